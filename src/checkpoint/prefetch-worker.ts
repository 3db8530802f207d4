// The helper thread of src/checkpoint/prefetch.ts: takes read jobs off the shared counter until
// none is left, then closes its files.
import { closeSync } from "node:fs";
import { workerData } from "node:worker_threads";
import { takeJobs, type ReadWork } from "./prefetch.js";

const fds = new Map<string, number>();
takeJobs(workerData as ReadWork, fds);
for (const fd of fds.values()) closeSync(fd);
