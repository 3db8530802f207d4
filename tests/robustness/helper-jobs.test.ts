// Jobs shared with a helper thread (src/io/helper-jobs.ts, under the checkpoint prefetch and the
// width slicing): a helper that ends while it holds a job leaves that job to this thread, which
// does it again at once instead of waiting out the job's deadline.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, expect, test } from "vitest";

const dir = mkdtempSync(join(tmpdir(), "ditc-helper-jobs-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("a helper that ends holding a job: this thread does the job again and every job finishes, long before the job's deadline", async () => {
  const io = new URL("../../dist/src/io/", import.meta.url).href;
  const helper = join(dir, "dying-helper.mjs");
  writeFileSync(helper, `
    import { workerData } from "node:worker_threads";
    const { recordThreadId } = await import("${io}thread-liveness.js");
    const { JOB } = await import("${io}helper-jobs.js");
    const { board } = workerData;
    recordThreadId(board.helper);
    // claims the first job and ends without doing it, as a thread whose heap ran out would
    const i = Atomics.add(board.next, 0, 1);
    Atomics.store(board.states, i, JOB.CLAIMED);
    process.exit(1);
  `);
  // in a child process: were this thread to wait out the 60 s deadline, the 30 s timeout ends it and the test fails
  const script = `
    const { jobBoard, runWithHelper } = await import("${io}helper-jobs.js");
    const board = jobBoard(4), done = [], finished = [];
    runWithHelper(4, 2, { module: ${JSON.stringify(helper)}, data: { board } },
      (i) => done.push(i),
      (i, ok) => { if (!ok) done.push(i); finished.push([i, ok]); },
      60_000, (i) => new Error("job " + i + " timed out"),
      () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000)); // the helper takes job 0 meanwhile
    console.log(JSON.stringify({ done: done.sort(), finished }));
  `;
  const r = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script], { timeout: 30_000 });
  expect(JSON.parse(r.stdout)).toEqual({ done: [0, 1, 2, 3], finished: [[0, false], [1, true], [2, true], [3, true]] });
});
