import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
    // both cores: many suites wait on child processes (coremltools, LiteRT, the CLI), which a second worker overlaps
    maxWorkers: 2,
  },
});
