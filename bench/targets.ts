/**
 * The servers under test: Parley (one profile for now: embedded) and the bare
 * Socket.IO relay. Each starts as its own process on a free loopback port with
 * a fresh data directory, and is ready when GET /api/health answers 200.
 */
import type { ChildProcess } from "node:child_process";
import net from "node:net";
import { hasExited, makeTempDir, removeTempDir, spawnNodeScript, stopChild } from "./children";

export type TargetName = "parley" | "relay";
export type Profile = "embedded" | "cluster-engines";

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
	pid: number;
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

export async function startTarget(name: TargetName, options: TargetOptions): Promise<RunningTarget> {
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
			// The per-user rate limit protects production from abuse; the bench is deliberate abuse.
			PARLEY_CALLS_PER_SECOND: "1000000",
			PARLEY_CALL_BURST: "1000000",
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
			pid: child.pid!,
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

function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = net.createServer();
		server.listen(0, "127.0.0.1", () => {
			const { port } = server.address() as net.AddressInfo;
			server.close(() => resolve(port));
		});
		server.on("error", reject);
	});
}
