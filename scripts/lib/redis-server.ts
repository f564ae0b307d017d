/**
 * A throwaway redis-server (Debian's package) on loopback: no persistence, so a restart
 * comes back empty, the harder case for the session registry. Used by the cluster
 * launcher and the Redis tests.
 */
import type { ChildProcess } from "node:child_process";
import { hasExited, portOpen, signalChild, spawnTracked } from "./processes";

export const REDIS_SERVER = process.env.PARLEY_REDIS_SERVER ?? "redis-server";

/** Starts redis-server on `port` with `dir` as its working dir; resolves once it accepts connections. */
export async function startRedisServer(dir: string, port: number): Promise<ChildProcess> {
	const child = spawnTracked(REDIS_SERVER, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], {
		stdio: ["ignore", "ignore", "pipe"],
	});
	await waitForPort(port, child, "redis-server");
	return child;
}

/** Waits until `child` listens on `port`, failing fast if it could not start or exited. */
export async function waitForPort(port: number, child: ChildProcess, name: string): Promise<void> {
	const deadline = Date.now() + 15_000;
	let failure = "";
	child.once("error", (err) => (failure = err.message));
	while (Date.now() < deadline) {
		if (failure) throw new Error(`${name} failed to start: ${failure}`);
		if (hasExited(child)) throw new Error(`${name} exited at start (is it installed? apt-get install redis-server nats-server)`);
		if (await portOpen("127.0.0.1", port, 500)) return;
		await new Promise((r) => setTimeout(r, 50));
	}
	signalChild(child, "SIGKILL");
	throw new Error(`${name} did not open port ${port}`);
}
