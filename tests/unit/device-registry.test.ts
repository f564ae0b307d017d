/** The push device registry on SQLite (Cassandra runs the same suite in tests/engines). */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { SqliteDeviceRegistry } from "../../lib/push/sqlite-device-registry";
import { deviceRegistryBehaviour } from "../support/device-registry-behaviour";

deviceRegistryBehaviour("sqlite", async () => new SqliteDeviceRegistry(fs.mkdtempSync(path.join(os.tmpdir(), "parley-devices-"))));
