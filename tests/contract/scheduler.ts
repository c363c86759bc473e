// Moved to testing/scheduler.ts (exported as "@tunebox/tunebox/testing"); kept for the tests that import it here.
export * from "../../testing/scheduler.ts";
