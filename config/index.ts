/**
 * All configuration, read from the environment once and validated here.
 * Nothing else in the code base reads process.env.
 */
import fs from "node:fs";
import path from "node:path";

export type Profile = "embedded" | "cluster";
export type Mode = "development" | "production";
/** gateway: sockets, HTTP, presence, typing. core: conversations, messages, receipts, search. */
export type Role = "gateway" | "core";
export const ROLES: readonly Role[] = ["gateway", "core"];

export interface Config {
	profile: Profile;
	mode: Mode;
	port: number;
	host: string;
	nodeID: string | undefined;
	/** Which services this process runs; the embedded profile runs every role. */
	roles: Role[];
	/** Cluster profile only. */
	cluster: {
		natsUrl: string;
		redisUrl: string;
		/** A gateway whose heartbeat is this old is dead: its sessions expire and its users go offline. */
		sessionTtlMs: number;
	};
	logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace";
	dataDir: string;
	auth: {
		/** HS256 shared secret (development default, or production when set). */
		jwtSecret: string | undefined;
		/** RS256 keys from a JWKS endpoint (production). */
		jwksUrl: string | undefined;
		issuer: string | undefined;
		audience: string | undefined;
		/** True when the built-in development secret is in use. */
		usingDevSecret: boolean;
	};
	/** Dev token endpoint: development mode only, never in production. */
	devTokens: boolean;
	corsOrigins: string[] | "*";
	limits: {
		maxTextLength: number;
		/** Largest Socket.IO packet accepted; bigger ones close the socket. */
		maxPacketBytes: number;
		historyMaxLimit: number;
		syncMaxLimit: number;
		searchMaxLimit: number;
		/** Calls per second per user (token bucket), and the bucket size. */
		callsPerSecond: number;
		callBurst: number;
		/** Bytes queued for one connection that its client has not read; past this the connection is closed. */
		maxUnreadBytes: number;
		/** Sessions (sockets) one user may hold on one gateway node. */
		maxSessionsPerUser: number;
	};
	store: {
		engine: "sqlite" | "cassandra";
		cassandra: {
			contactPoints: string[];
			localDataCenter: string;
			keyspace: string;
			/** Used when the keyspace is created, e.g. {"class":"NetworkTopologyStrategy","dc1":3}. */
			replication: Record<string, string | number>;
		};
	};
	search: {
		engine: "sqlite" | "elasticsearch";
		elasticsearch: { url: string; index: string };
	};
	/** Push notifications through FCM; off without a service account. */
	push: {
		serviceAccountFile: string | undefined;
		/** Route Google's endpoints through this https://host:port (an egress relay, or a test stand-in). */
		relayUrl: string | undefined;
		/** Extra CA (PEM file) to trust for that relay. */
		caFile: string | undefined;
	};
	receiptFlushMs: number;
	typingTtlMs: number;
	metricsPort: number;
}

export class ConfigError extends Error {}

const DEV_SECRET = "parley-development-secret-do-not-use-in-production";

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
	const read = new EnvReader(env);
	const mode = read.oneOf("PARLEY_MODE", ["development", "production"], "development") as Mode;
	const jwtSecret = read.string("PARLEY_JWT_SECRET");
	const jwksUrl = read.url("PARLEY_JWKS_URL", ["https:", "http:"]);

	if (mode === "production" && !jwtSecret && !jwksUrl) {
		throw new ConfigError("production mode needs PARLEY_JWT_SECRET or PARLEY_JWKS_URL");
	}
	if (mode === "production" && jwtSecret && jwtSecret.length < 32) {
		throw new ConfigError("PARLEY_JWT_SECRET must be at least 32 characters in production");
	}
	const usingDevSecret = !jwtSecret && !jwksUrl;
	const cors = read.string("PARLEY_CORS_ORIGINS");
	const profile = read.oneOf("PARLEY_PROFILE", ["embedded", "cluster"], "embedded") as Profile;
	// A cluster shares its store and index between nodes, so it defaults to the networked engines.
	const clustered = profile === "cluster";

	const config: Config = {
		profile,
		mode,
		port: read.int("PORT", 3000, 0, 65535),
		host: read.string("PARLEY_HOST") ?? "0.0.0.0",
		nodeID: read.string("PARLEY_NODE_ID"),
		roles: read.list("PARLEY_ROLES", ROLES, [...ROLES]) as Role[],
		cluster: {
			natsUrl: read.string("PARLEY_NATS_URL") ?? "nats://127.0.0.1:4222",
			redisUrl: read.string("PARLEY_REDIS_URL") ?? "redis://127.0.0.1:6379",
			sessionTtlMs: read.int("PARLEY_SESSION_TTL_MS", 15_000, 1000, 600_000),
		},
		logLevel: read.oneOf("PARLEY_LOG_LEVEL", ["fatal", "error", "warn", "info", "debug", "trace"], "info") as Config["logLevel"],
		dataDir: read.directory("PARLEY_DATA_DIR", "./data"),
		auth: {
			jwtSecret: jwtSecret ?? (usingDevSecret ? DEV_SECRET : undefined),
			jwksUrl,
			issuer: read.string("PARLEY_JWT_ISSUER"),
			audience: read.string("PARLEY_JWT_AUDIENCE"),
			usingDevSecret,
		},
		// Dev tokens are HS256: with only a JWKS there is no key to sign them with.
		devTokens: mode === "development" && (jwtSecret !== undefined || usingDevSecret),
		corsOrigins: cors ? cors.split(",").map((o) => o.trim()).filter(Boolean) : mode === "development" ? "*" : [],
		limits: {
			maxTextLength: read.int("PARLEY_MAX_TEXT_LENGTH", 4000, 1, 100_000),
			// Room for messages.sync with 10,000 cursors.
			maxPacketBytes: read.int("PARLEY_MAX_PACKET_BYTES", 1024 * 1024, 1024, 16 * 1024 * 1024),
			historyMaxLimit: 200,
			syncMaxLimit: read.int("PARLEY_SYNC_MAX_LIMIT", 5000, 100, 50_000),
			searchMaxLimit: 50,
			callsPerSecond: read.int("PARLEY_CALLS_PER_SECOND", 200, 1, 1_000_000),
			callBurst: read.int("PARLEY_CALL_BURST", 400, 1, 1_000_000),
			maxUnreadBytes: read.int("PARLEY_MAX_UNREAD_BYTES", 8 * 1024 * 1024, 64 * 1024, 1024 * 1024 * 1024),
			maxSessionsPerUser: read.int("PARLEY_MAX_SESSIONS_PER_USER", 20, 1, 10_000),
		},
		store: {
			engine: read.oneOf("PARLEY_STORE", ["sqlite", "cassandra"], clustered ? "cassandra" : "sqlite") as Config["store"]["engine"],
			cassandra: {
				contactPoints: (read.string("PARLEY_CASSANDRA_CONTACT_POINTS") ?? "127.0.0.1:9042").split(",").map((s) => s.trim()),
				localDataCenter: read.string("PARLEY_CASSANDRA_LOCAL_DC") ?? "datacenter1",
				// Spliced into CQL, so stricter than other names: no "-".
				keyspace: read.identifier("PARLEY_CASSANDRA_KEYSPACE", "parley", /^[a-z][a-z0-9_]{0,47}$/),
				replication: read.json("PARLEY_CASSANDRA_REPLICATION", { class: "SimpleStrategy", replication_factor: 1 }),
			},
		},
		search: {
			engine: read.oneOf("PARLEY_SEARCH", ["sqlite", "elasticsearch"], clustered ? "elasticsearch" : "sqlite") as Config["search"]["engine"],
			elasticsearch: {
				url: read.string("PARLEY_ELASTICSEARCH_URL") ?? "http://127.0.0.1:9200",
				index: read.identifier("PARLEY_ELASTICSEARCH_INDEX", "parley-messages"),
			},
		},
		push: {
			serviceAccountFile: read.file("PARLEY_FCM_SERVICE_ACCOUNT"),
			relayUrl: read.url("PARLEY_FCM_RELAY_URL", ["https:"]),
			caFile: read.file("PARLEY_FCM_CA_FILE"),
		},
		receiptFlushMs: read.int("PARLEY_RECEIPT_FLUSH_MS", 20, 0, 10_000),
		typingTtlMs: read.int("PARLEY_TYPING_TTL_MS", 6000, 100, 60_000),
		metricsPort: read.int("PARLEY_METRICS_PORT", 0, 0, 65535),
	};
	// The SQLite index lives inside the SQLite store's transactions.
	if (config.search.engine === "sqlite" && config.store.engine !== "sqlite") {
		throw new ConfigError("PARLEY_SEARCH=sqlite needs PARLEY_STORE=sqlite; with Cassandra use PARLEY_SEARCH=elasticsearch");
	}
	// SQLite is a file of one process: nodes of a cluster could not share it.
	if (clustered && config.store.engine === "sqlite") {
		throw new ConfigError("PARLEY_PROFILE=cluster needs PARLEY_STORE=cassandra and PARLEY_SEARCH=elasticsearch");
	}
	if (!clustered && config.roles.length !== ROLES.length) {
		throw new ConfigError("PARLEY_ROLES splits services between nodes: it needs PARLEY_PROFILE=cluster");
	}
	// Moleculer calls a local service before asking the Shard strategy, so a node running both roles
	// would order every conversation itself, beside the other core nodes: one role per cluster node.
	if (clustered && (env.PARLEY_ROLES === undefined || config.roles.length !== 1)) {
		throw new ConfigError(`PARLEY_PROFILE=cluster needs PARLEY_ROLES set to one role per node: ${ROLES.join(" or ")}`);
	}
	// Worst case a character is 4 bytes of UTF-8; a text within its limit must never exceed the packet limit.
	if (config.limits.maxPacketBytes < config.limits.maxTextLength * 4 + 4096) {
		throw new ConfigError("PARLEY_MAX_PACKET_BYTES must be at least 4 x PARLEY_MAX_TEXT_LENGTH + 4096");
	}
	return Object.freeze(config);
}

class EnvReader {
	constructor(private readonly env: NodeJS.ProcessEnv) {}

	string(name: string): string | undefined {
		const value = this.env[name];
		return value === undefined || value.trim() === "" ? undefined : value.trim();
	}

	int(name: string, fallback: number, min: number, max: number): number {
		const raw = this.string(name);
		if (raw === undefined) return fallback;
		// Plain decimal only: Number() would also take "0x3904" or "1e3".
		const value = /^-?\d+$/.test(raw) ? Number(raw) : NaN;
		if (!Number.isInteger(value) || value < min || value > max) {
			throw new ConfigError(`${name} must be an integer between ${min} and ${max}, got "${raw}"`);
		}
		return value;
	}

	/** A directory that exists or can be made (a file there is refused now, not at the first write). */
	directory(name: string, fallback: string): string {
		const dir = path.resolve(this.string(name) ?? fallback);
		let stat: fs.Stats | undefined;
		try {
			stat = fs.statSync(dir);
		} catch {
			return dir; // made at start
		}
		if (!stat.isDirectory()) throw new ConfigError(`${name} must be a directory, got "${dir}" (not a directory)`);
		return dir;
	}

	/** A path to a readable file, if set. */
	file(name: string): string | undefined {
		const value = this.string(name);
		if (value === undefined) return undefined;
		try {
			fs.accessSync(value, fs.constants.R_OK);
		} catch {
			throw new ConfigError(`${name} must name a readable file, got "${value}"`);
		}
		return path.resolve(value);
	}

	/** An absolute URL with one of these protocols, if set. */
	url(name: string, protocols: string[]): string | undefined {
		const value = this.string(name);
		if (value === undefined) return undefined;
		let parsed: URL | undefined;
		try {
			parsed = new URL(value);
		} catch {
			// reported below
		}
		if (!parsed || !protocols.includes(parsed.protocol)) throw new ConfigError(`${name} must be a ${protocols.join(" or ")} URL, got "${value}"`);
		return value;
	}

	identifier(name: string, fallback: string, rule = /^[a-z][a-z0-9_-]{0,47}$/): string {
		const value = this.string(name) ?? fallback;
		if (!rule.test(value)) throw new ConfigError(`${name} must be lower-case letters, digits${rule.source.includes("-") ? ", _ or -" : " or _"}, got "${value}"`);
		return value;
	}

	json<T extends object>(name: string, fallback: T): T {
		const raw = this.string(name);
		if (raw === undefined) return fallback;
		try {
			const value = JSON.parse(raw) as unknown;
			if (value && typeof value === "object" && !Array.isArray(value)) return value as T;
		} catch {
			// reported below
		}
		throw new ConfigError(`${name} must be a JSON object, got "${raw}"`);
	}

	/** A comma-separated subset of `allowed`, at least one. */
	list(name: string, allowed: readonly string[], fallback: string[]): string[] {
		const raw = this.string(name);
		if (raw === undefined) return fallback;
		const items = [...new Set(raw.split(",").map((s) => s.trim()).filter(Boolean))];
		const unknown = items.filter((i) => !allowed.includes(i));
		if (items.length === 0 || unknown.length > 0) throw new ConfigError(`${name} must be a comma-separated list of ${allowed.join(", ")}, got "${raw}"`);
		return items;
	}

	oneOf(name: string, allowed: string[], fallback: string): string {
		const raw = this.string(name);
		if (raw === undefined) return fallback;
		if (!allowed.includes(raw)) throw new ConfigError(`${name} must be one of ${allowed.join(", ")}, got "${raw}"`);
		return raw;
	}
}
