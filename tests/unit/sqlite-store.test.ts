import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { SqliteStore } from "../../lib/store/sqlite-store";
import { storeBehaviour } from "../support/store-behaviour";

storeBehaviour("sqlite", async () => new SqliteStore(fs.mkdtempSync(path.join(os.tmpdir(), "parley-store-"))));
