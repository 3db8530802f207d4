// The helper thread of src/model/slice-jobs.ts.
import { workerData } from "node:worker_threads";
import { sliceJobs, type SliceWork } from "./slice-jobs.js";

sliceJobs(workerData as SliceWork);
