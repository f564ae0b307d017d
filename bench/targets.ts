/**
 * The servers under test: Parley (embedded, one process on the production engines, or a
 * local cluster) and the bare Socket.IO relay. Each starts on free loopback ports with
 * fresh storage, and is ready when GET /api/health answers 200 (a cluster: when every
 * node has printed its ready line).
 */
import type { ChildProcess } from "node:child_process";
import { startCluster } from "../scripts/cluster-launcher";
import { freePort } from "../scripts/lib/processes";
import { hasExited, makeTempDir, removeTempDir, spawnNodeScript, stopChild } from "./children";

export type TargetName = "parley" | "relay";
export type Profile = "embedded" | "cluster-engines" | "cluster";

/** Nodes of the `cluster` profile, as the issue sets it: two gateways and two core nodes. */
const CLUSTER_SHAPE = { gateways: 2, cores: 2 };

export interface TargetOptions {
	profile: Profile;
	/** Log level for Parley; "info" is needed to see its "Parley ready" line. */
	logLevel: "warn" | "info";
	relaySummaries: boolean;
	/** Directory for a V8 CPU profile of the server (written when it exits). */
	cpuProfileDir?: string;
}

export interface RunningTarget {
	name: TargetName;
	url: string;
	/** Every gateway (one for a single process). */
	urls: string[];
	/** The server's processes now: one, or every node of a cluster (a restarted node has a new pid). */
	pids: () => number[];
	child: ChildProcess;
	/** ms from spawn to the first 200 from /api/health. */
	healthMs: number;
	/** ms from spawn to the ready line in its output, if seen yet. */
	readyLineMs: () => number | undefined;
	/** The ready line itself (Parley's includes its own measure of start-up). */
	readyLine: () => string | undefined;
	/** Everything it printed. */
	output: () => string;
	stop: () => Promise<void>;
}

const READY_LINE: Record<TargetName, RegExp> = {
	parley: /Parley ready[^\n]*/,
	relay: /relay ready[^\n]*/,
};

const HEALTH_TIMEOUT_MS = 30_000;

/**
 * Server settings per bench profile. cluster-engines: one process on Cassandra + Elasticsearch
 * (start them with `npm run engines -- start all`), in a keyspace and index of its own per run.
 */
function profileEnv(profile: Profile): Record<string, string> {
	if (profile === "embedded") return { PARLEY_PROFILE: "embedded" };
	const run = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
	return {
		PARLEY_PROFILE: "embedded",
		PARLEY_STORE: "cassandra",
		PARLEY_SEARCH: "elasticsearch",
		PARLEY_CASSANDRA_KEYSPACE: `parley_bench_${run}`,
		PARLEY_ELASTICSEARCH_INDEX: `parley-bench-${run}`,
	};
}

/** The per-user rate limit protects production from abuse; the bench is deliberate abuse. */
const UNLIMITED = { PARLEY_CALLS_PER_SECOND: "1000000", PARLEY_CALL_BURST: "1000000" };

export async function startTarget(name: TargetName, options: TargetOptions): Promise<RunningTarget> {
	if (name === "parley" && options.profile === "cluster") return startClusterTarget();
	const port = await freePort();
	const dataDir = makeTempDir(`parley-bench-${name}-`);
	const spawnedAt = performance.now();
	const child = spawnNodeScript({
		script: name === "parley" ? "server.ts" : "bench/baseline-relay.ts",
		nodeFlags: options.cpuProfileDir ? ["--cpu-prof", `--cpu-prof-dir=${options.cpuProfileDir}`] : [],
		env: {
			PORT: String(port),
			PARLEY_HOST: "127.0.0.1",
			PARLEY_DATA_DIR: dataDir,
			...profileEnv(options.profile),
			PARLEY_LOG_LEVEL: options.logLevel,
			...UNLIMITED,
			RELAY_SUMMARIES: options.relaySummaries ? "1" : "0",
		},
	});
	let output = "";
	let readyLineMs: number | undefined;
	let readyLine: string | undefined;
	const onData = (chunk: Buffer) => {
		output += chunk.toString();
		if (readyLine === undefined) {
			const match = READY_LINE[name].exec(output);
			if (match) {
				readyLineMs = performance.now() - spawnedAt;
				readyLine = match[0];
			}
		}
	};
	child.stdout!.on("data", onData);
	child.stderr!.on("data", onData);

	const stop = async () => {
		await stopChild(child);
		removeTempDir(dataDir);
	};
	try {
		const healthMs = (await waitForHealth(`http://127.0.0.1:${port}`, child, () => output)) - spawnedAt;
		return {
			name,
			url: `http://127.0.0.1:${port}`,
			urls: [`http://127.0.0.1:${port}`],
			pids: () => (hasExited(child) ? [] : [child.pid!]),
			child,
			healthMs,
			readyLineMs: () => readyLineMs,
			readyLine: () => readyLine,
			output: () => output,
			stop,
		};
	} catch (err) {
		await stop();
		throw err;
	}
}

/**
 * Two gateways and two core nodes over NATS and Redis (started here), on Cassandra and
 * Elasticsearch (started beforehand with `npm run engines -- start all`). Node logs are
 * kept at info, which the launcher needs for its ready lines; only warnings count as problems.
 */
async function startClusterTarget(): Promise<RunningTarget> {
	const spawnedAt = performance.now();
	const cluster = await startCluster({ ...CLUSTER_SHAPE, env: UNLIMITED });
	const healthMs = performance.now() - spawnedAt;
	const first = cluster.gateways[0]!;
	const problems = () =>
		[...cluster.gateways, ...cluster.cores]
			.flatMap((n) => cluster.logsOf(n.nodeID).map((line) => `[${n.nodeID}] ${line}`))
			.filter((line) => /\b(WARN|ERROR|FATAL)\b|\[cassandra-store\]/.test(line))
			.join("\n");
	return {
		name: "parley",
		url: first.url,
		urls: cluster.gateways.map((g) => g.url),
		pids: () => cluster.pids(),
		child: cluster.processOf(first.nodeID),
		healthMs,
		readyLineMs: () => healthMs,
		readyLine: () => undefined,
		output: problems,
		stop: () => cluster.stop(),
	};
}

/** Polls every 10 ms (the resolution of the start-up figure); returns the performance.now() of the first 200. */
async function waitForHealth(url: string, child: ChildProcess, output: () => string): Promise<number> {
	const deadline = performance.now() + HEALTH_TIMEOUT_MS;
	while (performance.now() < deadline) {
		if (hasExited(child)) throw new Error(`server exited (${child.exitCode ?? child.signalCode}) before it was healthy:\n${output()}`);
		try {
			const res = await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(1000) });
			if (res.ok) return performance.now();
		} catch {
			// not listening yet
		}
		await new Promise((r) => setTimeout(r, 10));
	}
	throw new Error(`server not healthy within ${HEALTH_TIMEOUT_MS} ms:\n${output()}`);
}
