// The helper thread of src/model/synthesis-jobs.ts.
import { workerData } from "node:worker_threads";
import { drawJobs, type SynthesisWork } from "./synthesis-jobs.js";

drawJobs(workerData as SynthesisWork);
