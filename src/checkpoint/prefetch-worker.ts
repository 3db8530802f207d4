// The helper thread of src/checkpoint/prefetch.ts.
import { workerData } from "node:worker_threads";
import { readJobs, type ReadWork } from "./prefetch.js";

readJobs(workerData as ReadWork);
