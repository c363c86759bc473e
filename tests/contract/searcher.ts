// Moved to testing/searcher.ts (exported as "@tunebox/tunebox/testing"); kept for the tests that import it here.
export * from "../../testing/searcher.ts";
