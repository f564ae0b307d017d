import { durabilitySuite } from "../support/durability-suite";

durabilitySuite("SQLite + FTS5");
