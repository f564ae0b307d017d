/** DeviceRegistry in the cluster's Cassandra keyspace (tables push_devices and push_tokens). */
import type { Client } from "cassandra-driver";
import { type CassandraStoreOptions, DEFAULTS } from "../store/cassandra-io";
import { checkKeyspaceName } from "../store/cassandra-schema";
import { createCassandraClient, schemaReady } from "../store/cassandra-store";
import type { DeviceRegistry, Platform, PushDevice } from "./device-registry";

type Options = Pick<CassandraStoreOptions, "contactPoints" | "localDataCenter" | "keyspace" | "replication">;

export class CassandraDeviceRegistry implements DeviceRegistry {
	private client: Client | null = null;
	private readonly ks: string;

	constructor(private readonly options: Options) {
		this.ks = checkKeyspaceName(options.keyspace);
	}

	async open(): Promise<void> {
		const settings = { ...DEFAULTS, ...this.options };
		const client = createCassandraClient(settings);
		try {
			await client.connect();
			await schemaReady(client, this.ks, settings.replication, settings.owner);
		} catch (err) {
			await client.shutdown().catch(() => undefined);
			throw err;
		}
		this.client = client;
	}

	async close(): Promise<void> {
		await this.client?.shutdown();
		this.client = null;
	}

	private async run(query: string, params: unknown[]) {
		if (!this.client) throw new Error("device registry is not open");
		return this.client.execute(query, params, { prepare: true, isIdempotent: true });
	}

	async register(d: PushDevice): Promise<void> {
		const [holder, current] = await Promise.all([
			this.run(`SELECT user_id, device_id FROM ${this.ks}.push_tokens WHERE fcm_token = ?`, [d.token]),
			this.run(`SELECT fcm_token FROM ${this.ks}.push_devices WHERE user_id = ? AND device_id = ?`, [d.userId, d.deviceId]),
		]);
		const previousHolder = holder.first();
		// The token moves: the device that had it loses it (only if it still has that token).
		if (previousHolder && (previousHolder.get("user_id") !== d.userId || previousHolder.get("device_id") !== d.deviceId)) {
			await this.forget([{ ...d, userId: String(previousHolder.get("user_id")), deviceId: String(previousHolder.get("device_id")) }]);
		}
		const oldToken = current.first()?.get("fcm_token") as string | undefined;
		if (oldToken && oldToken !== d.token) await this.run(`DELETE FROM ${this.ks}.push_tokens WHERE fcm_token = ?`, [oldToken]);
		await this.client!.batch(
			[
				{ query: `INSERT INTO ${this.ks}.push_devices (user_id, device_id, fcm_token, platform) VALUES (?, ?, ?, ?)`, params: [d.userId, d.deviceId, d.token, d.platform] },
				{ query: `INSERT INTO ${this.ks}.push_tokens (fcm_token, user_id, device_id) VALUES (?, ?, ?)`, params: [d.token, d.userId, d.deviceId] },
			],
			{ prepare: true, logged: true, isIdempotent: true },
		);
	}

	async unregister(userId: string, deviceId: string): Promise<void> {
		const token = (await this.run(`SELECT fcm_token FROM ${this.ks}.push_devices WHERE user_id = ? AND device_id = ?`, [userId, deviceId])).first()?.get("fcm_token") as string | undefined;
		await this.run(`DELETE FROM ${this.ks}.push_devices WHERE user_id = ? AND device_id = ?`, [userId, deviceId]);
		if (token) await this.run(`DELETE FROM ${this.ks}.push_tokens WHERE fcm_token = ?`, [token]);
	}

	async devicesOf(userIds: string[]): Promise<PushDevice[]> {
		const unique = [...new Set(userIds)];
		const results = await Promise.all(unique.map((userId) => this.run(`SELECT user_id, device_id, fcm_token, platform FROM ${this.ks}.push_devices WHERE user_id = ?`, [userId])));
		return results.flatMap((rs) =>
			rs.rows.map((r) => ({ userId: String(r.get("user_id")), deviceId: String(r.get("device_id")), token: String(r.get("fcm_token")), platform: r.get("platform") as Platform })),
		);
	}

	async forget(devices: PushDevice[]): Promise<void> {
		for (const d of devices) {
			const current = (await this.run(`SELECT fcm_token FROM ${this.ks}.push_devices WHERE user_id = ? AND device_id = ?`, [d.userId, d.deviceId])).first()?.get("fcm_token");
			if (current === d.token) await this.run(`DELETE FROM ${this.ks}.push_devices WHERE user_id = ? AND device_id = ?`, [d.userId, d.deviceId]);
			const holder = (await this.run(`SELECT user_id, device_id FROM ${this.ks}.push_tokens WHERE fcm_token = ?`, [d.token])).first();
			if (holder && holder.get("user_id") === d.userId && holder.get("device_id") === d.deviceId) await this.run(`DELETE FROM ${this.ks}.push_tokens WHERE fcm_token = ?`, [d.token]);
		}
	}
}
