// Clusterings a compile carries from one width to the next. Width slicing keeps some weights
// whole: the cross-attention's key and value projections read the text context, which no width
// narrows. Such a weight has the same bytes at every width, and when its plan is the same too
// (bits, groups, and the activation statistics that weight its k-means and correct its bias,
// which for these layers come from inputs no width changes) so is its clustering: a later width
// takes it instead of clustering the weight again. In the full preset's mixed compile, 25 of the
// 8-bit layers' 201 exact k-means were such repeats.
import type { ClusterJob } from "./cluster-pool.js";
import type { Palettized } from "./kmeans.js";
import { planElements, type ClusterPlan } from "./layer.js";

/** Where a width's clusterings and corrected biases are stored (the palettize pass' SharedQuantization). */
interface Store {
  clusterings: Map<string, Palettized>;
  biases: Map<string, Float32Array>;
}

/** What decides a whole weight's clustering besides its bytes, and what it gave. */
interface Kept {
  plan: ClusterPlan;
  /** per bias correction: where it is stored, E[x], the bias before correction, and the corrected one */
  corrections: { source: string; mean: Float64Array; old: Float32Array | undefined; value: Float32Array }[];
  clustering: Palettized;
}

function sameArray(a: ArrayLike<number> | undefined, b: ArrayLike<number> | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function samePlan(a: ClusterPlan, b: ClusterPlan): boolean {
  return a.bits === b.bits && a.groups === b.groups && a.biasCorrected === b.biasCorrected && a.layout.inPerRow === b.layout.inPerRow && a.layout.spatial === b.layout.spatial && sameArray(a.layout.rowBase, b.layout.rowBase) && sameArray(a.importance, b.importance);
}

export class WholeWeightClusterings {
  private readonly kept = new Map<string, Kept>();

  /**
   * `storedElements(source)`: how many elements the checkpoint tensor `source` holds (undefined
   * for anything else). A width's weight with that many elements is the stored tensor whole: a
   * slice keeps a subset of the entries.
   */
  constructor(private readonly storedElements: (source: string) => number | undefined) {}

  private isWhole(job: ClusterJob): boolean {
    return this.storedElements(job.source) === planElements(job.plan);
  }

  /**
   * Stores in `into` the clustering (and corrected biases) of each job an earlier width clustered
   * with the same plan and statistics; returns the other jobs (those `into` holds already among
   * them: startClustering skips those).
   */
  lend(jobs: readonly ClusterJob[], into: Store): ClusterJob[] {
    return jobs.filter((job) => {
      if (into.clusterings.has(job.source)) return true; // clustered already (by this width's probe)
      const k = this.kept.get(job.source);
      if (!k || !this.isWhole(job) || !samePlan(k.plan, job.plan)) return true;
      const fixes = job.corrections ?? [];
      if (fixes.length !== k.corrections.length) return true;
      for (const [i, f] of fixes.entries()) {
        const was = k.corrections[i]!;
        if (f.source !== was.source || !sameArray(f.mean, was.mean) || !sameArray(f.old?.(), was.old)) return true;
      }
      into.clusterings.set(job.source, k.clustering);
      for (const c of k.corrections) into.biases.set(c.source, c.value);
      return false;
    });
  }

  /** Keeps, for the widths to come, the clusterings `from` holds of the jobs' whole weights. */
  keep(jobs: readonly ClusterJob[], from: Store): void {
    for (const job of jobs) {
      const clustering = from.clusterings.get(job.source);
      if (!clustering || !this.isWhole(job)) continue;
      const corrections: Kept["corrections"] = [];
      for (const f of job.corrections ?? []) {
        const value = from.biases.get(f.source);
        if (!value) break;
        corrections.push({ source: f.source, mean: f.mean, old: f.old?.(), value });
      }
      if (corrections.length === (job.corrections?.length ?? 0)) this.kept.set(job.source, { plan: job.plan, corrections, clustering });
    }
  }
}
