/**
 * Starts a whole Parley cluster on this machine: nats-server (JetStream on) and
 * redis-server from the Debian packages on free ports, then gateway and core
 * nodes as child processes of one build. Used by `npm run cluster`, the cluster
 * tests and `npm run bench -- --profile cluster`. Cassandra and Elasticsearch
 * must already run (scripts/engines.sh); each cluster gets its own keyspace and index.
 */
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { assertEnginesUp, dropStorage, engineEnv } from "./lib/engines";
import { startRedisServer, waitForPort } from "./lib/redis-server";
import { RecentLines, exitOf, freePorts, hasExited, makeTempDir, onLines, removeTempDir, signalChild, spawnNodeScript, spawnTracked, stopChild } from "./lib/processes";

export interface ClusterOptions {
	gateways?: number;
	cores?: number;
	/** Gateway ports; free ones by default. */
	gatewayPorts?: number[];
	/** Extra environment for every node. */
	env?: Record<string, string>;
	/** Print every node's log lines with its node id. */
	echo?: boolean;
	/** Keep the keyspace and index after stop (npm run cluster keeps them for a restart). */
	keepStorage?: boolean;
	keyspace?: string;
	index?: string;
}

export interface GatewayInfo {
	nodeID: string;
	url: string;
	port: number;
}

export interface ClusterHandle {
	gateways: GatewayInfo[];
	cores: { nodeID: string }[];
	natsUrl: string;
	redisUrl: string;
	/** Sends a signal to a node (default SIGKILL) and waits for it to exit. */
	kill(nodeID: string, signal?: NodeJS.Signals): Promise<void>;
	/** Starts a stopped node again with the same id, port and environment. */
	start(nodeID: string): Promise<void>;
	/** SIGTERM a node (it drains) and wait for it. */
	stopNode(nodeID: string): Promise<void>;
	/** Kills Redis and starts it again on the same port with no data. */
	restartRedis(): Promise<void>;
	processOf(nodeID: string): ChildProcess;
	pids(): number[];
	logsOf(nodeID: string): string[];
	stop(): Promise<void>;
}

interface NodeSpec {
	nodeID: string;
	role: "gateway" | "core";
	env: Record<string, string>;
	port?: number;
}

const READY = /Parley ready/;
const START_TIMEOUT_MS = 60_000;

export async function startCluster(options: ClusterOptions = {}): Promise<ClusterHandle> {
	const engines = engineEnv();
	await assertEnginesUp(engines);
	const run = randomBytes(4).toString("hex");
	const keyspace = options.keyspace ?? `parley_cluster_${run}`;
	const index = options.index ?? `parley-cluster-${run}`;
	const dir = makeTempDir("parley-cluster-");
	const [natsPort, redisPort, ...free] = await freePorts(2 + (options.gateways ?? 2));
	const gatewayPorts = options.gatewayPorts ?? free;

	const nats = startNats(dir, natsPort!);
	const redis = { child: await startRedisServer(dir, redisPort!) };
	await waitForPort(natsPort!, nats, "nats-server");
	const natsUrl = `nats://127.0.0.1:${natsPort}`;
	const redisUrl = `redis://127.0.0.1:${redisPort}`;

	const shared: Record<string, string> = {
		...engines,
		PARLEY_PROFILE: "cluster",
		PARLEY_HOST: "127.0.0.1",
		PARLEY_NATS_URL: natsUrl,
		PARLEY_REDIS_URL: redisUrl,
		PARLEY_STORE: "cassandra",
		PARLEY_SEARCH: "elasticsearch",
		PARLEY_CASSANDRA_KEYSPACE: keyspace,
		PARLEY_ELASTICSEARCH_INDEX: index,
		PARLEY_LOG_LEVEL: "info",
		...options.env,
	};
	const specs: NodeSpec[] = [
		...Array.from({ length: options.cores ?? 2 }, (_, i): NodeSpec => ({ nodeID: `core-${i + 1}`, role: "core", env: shared })),
		...Array.from({ length: options.gateways ?? 2 }, (_, i): NodeSpec => ({ nodeID: `gateway-${i + 1}`, role: "gateway", env: shared, port: gatewayPorts[i] })),
	];
	const nodes = new Map<string, { spec: NodeSpec; child: ChildProcess; logs: RecentLines }>();
	const logs = new Map(specs.map((s) => [s.nodeID, new RecentLines(400)]));

	const launch = async (spec: NodeSpec) => {
		const nodeLogs = logs.get(spec.nodeID)!;
		const child = spawnNodeScript({
			script: "server.ts",
			env: {
				...spec.env,
				PARLEY_ROLES: spec.role,
				PARLEY_NODE_ID: spec.nodeID,
				PARLEY_DATA_DIR: path.join(dir, spec.nodeID),
				PORT: String(spec.port ?? 0),
			},
		});
		nodes.set(spec.nodeID, { spec, child, logs: nodeLogs });
		let ready = false;
		const readyOrExit = new Promise<void>((resolve, reject) => {
			const timer = setTimeout(() => reject(new Error(`${spec.nodeID} not ready within ${START_TIMEOUT_MS} ms:\n${nodeLogs.last(30).join("\n")}`)), START_TIMEOUT_MS);
			onLines(child, (line) => {
				nodeLogs.push(line);
				if (options.echo) console.log(`[${spec.nodeID}] ${line}`);
				if (!ready && READY.test(line)) {
					ready = true;
					clearTimeout(timer);
					resolve();
				}
			});
			child.once("exit", (code, signal) => {
				clearTimeout(timer);
				if (!ready) reject(new Error(`${spec.nodeID} exited (${code ?? signal}) before it was ready:\n${nodeLogs.last(30).join("\n")}`));
			});
		});
		await readyOrExit;
	};

	const stopAll = async () => {
		await Promise.all([...nodes.values()].map(({ child }) => stopChild(child, 8000)));
		await Promise.all([stopChild(nats, 3000), stopChild(redis.child, 3000)]);
		if (!options.keepStorage) await dropStorage(engines, keyspace, index).catch(() => undefined);
		removeTempDir(dir);
	};

	try {
		// The schema once, before any node: core nodes then find it at their version and run no DDL.
		await migrate(shared);
		// Core nodes first: gateways open their port only once every service they front is up.
		await Promise.all(specs.filter((s) => s.role === "core").map(launch));
		await Promise.all(specs.filter((s) => s.role === "gateway").map(launch));
	} catch (err) {
		await stopAll();
		throw err;
	}

	const nodeOf = (nodeID: string) => {
		const node = nodes.get(nodeID);
		if (!node) throw new Error(`no node ${nodeID}`);
		return node;
	};

	return {
		gateways: specs.filter((s) => s.role === "gateway").map((s) => ({ nodeID: s.nodeID, port: s.port!, url: `http://127.0.0.1:${s.port}` })),
		cores: specs.filter((s) => s.role === "core").map((s) => ({ nodeID: s.nodeID })),
		natsUrl,
		redisUrl,
		async kill(nodeID, signal = "SIGKILL") {
			const { child } = nodeOf(nodeID);
			signalChild(child, signal);
			await exitOf(child);
		},
		async start(nodeID) {
			const node = nodeOf(nodeID);
			if (!hasExited(node.child)) throw new Error(`${nodeID} is still running`);
			await launch(node.spec);
		},
		async stopNode(nodeID) {
			await stopChild(nodeOf(nodeID).child, 8000);
		},
		async restartRedis() {
			signalChild(redis.child, "SIGKILL");
			await exitOf(redis.child);
			redis.child = await startRedisServer(dir, redisPort!);
		},
		processOf: (nodeID) => nodeOf(nodeID).child,
		pids: () => [nats, redis.child, ...[...nodes.values()].map((n) => n.child)].filter((c) => !hasExited(c)).map((c) => c.pid!),
		logsOf: (nodeID) => logs.get(nodeID)?.last() ?? [],
		stop: stopAll,
	};
}

/**
 * JetStream on, data in the cluster's temp dir. max_payload 8 MB: a messages.sync page
 * (up to ~2 MB of JSON) crosses NATS as one reply, over the 1 MB default.
 */
async function migrate(env: Record<string, string>): Promise<void> {
	const child = spawnNodeScript({ script: "scripts/migrate.ts", env: { ...env, PARLEY_ROLES: "core" } });
	const output = new RecentLines(20);
	onLines(child, (line) => output.push(line));
	await exitOf(child);
	if (child.exitCode !== 0) throw new Error(`npm run migrate failed:\n${output.last(20).join("\n")}`);
}

function startNats(dir: string, port: number): ChildProcess {
	const config = path.join(dir, "nats.conf");
	fs.writeFileSync(config, `listen: 127.0.0.1:${port}\nmax_payload: 8MB\njetstream { store_dir: "${path.join(dir, "jetstream")}" }\n`);
	return spawnTracked(natsServerBinary(), ["-c", config], { stdio: ["ignore", "ignore", "pipe"] });
}

/** Debian installs nats-server in /usr/sbin, which is not on every user's PATH. */
function natsServerBinary(): string {
	for (const dir of (process.env.PATH ?? "").split(":").concat("/usr/sbin", "/usr/local/sbin")) {
		const candidate = path.join(dir, "nats-server");
		if (dir && fs.existsSync(candidate)) return candidate;
	}
	throw new Error("nats-server not found: install it with `apt-get install nats-server`");
}
