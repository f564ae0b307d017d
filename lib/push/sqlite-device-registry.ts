/** DeviceRegistry in the embedded profile's SQLite database. */
import type Database from "better-sqlite3";
import { acquireDatabase, releaseDatabase } from "../sqlite/database";
import { migrate } from "../store/sqlite-store";
import type { DeviceRegistry, Platform, PushDevice } from "./device-registry";


interface Row {
	user_id: string;
	device_id: string;
	token: string;
	platform: Platform;
}

const toDevice = (r: Row): PushDevice => ({ userId: r.user_id, deviceId: r.device_id, token: r.token, platform: r.platform });

export class SqliteDeviceRegistry implements DeviceRegistry {
	private db!: Database.Database;
	private byUsers: Database.Statement | undefined;

	constructor(private readonly dataDir: string) {}

	async open(): Promise<void> {
		this.db = acquireDatabase(this.dataDir);
		// The table is one of the store's migrations (whoever opens the database first runs them).
		migrate(this.db);
	}

	async close(): Promise<void> {
		if (this.db) releaseDatabase(this.db);
	}

	async register(d: PushDevice): Promise<void> {
		this.db.transaction(() => {
			// The token moves: whoever had it before loses it.
			this.db.prepare(`DELETE FROM push_devices WHERE token = ? AND NOT (user_id = ? AND device_id = ?)`).run(d.token, d.userId, d.deviceId);
			this.db
				.prepare(
					`INSERT INTO push_devices (user_id, device_id, token, platform, updated_at) VALUES (?, ?, ?, ?, ?)
					 ON CONFLICT (user_id, device_id) DO UPDATE SET token = excluded.token, platform = excluded.platform, updated_at = excluded.updated_at`,
				)
				.run(d.userId, d.deviceId, d.token, d.platform, Date.now());
		})();
	}

	async unregister(userId: string, deviceId: string): Promise<void> {
		this.db.prepare(`DELETE FROM push_devices WHERE user_id = ? AND device_id = ?`).run(userId, deviceId);
	}

	async devicesOf(userIds: string[]): Promise<PushDevice[]> {
		if (userIds.length === 0) return [];
		// Asked once per push batch, on the message path: prepared once.
		this.byUsers ??= this.db.prepare(`SELECT * FROM push_devices WHERE user_id IN (SELECT value FROM json_each(?))`);
		return (this.byUsers.all(JSON.stringify(userIds)) as Row[]).map(toDevice);
	}

	async forget(devices: PushDevice[]): Promise<void> {
		const remove = this.db.prepare(`DELETE FROM push_devices WHERE user_id = ? AND device_id = ? AND token = ?`);
		this.db.transaction(() => devices.forEach((d) => remove.run(d.userId, d.deviceId, d.token)))();
	}
}
