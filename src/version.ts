// ditc's version, as package.json states it (tests/cli/cli.test.ts keeps the two equal): written
// into report.json, the artifacts' metadata and the plugin's cache key, and printed by --version.
export const DITC_VERSION = "0.1.0";
