/**
 * A throwaway redis-server for the cluster tests: loopback, a free port, a temp dir,
 * no persistence, so restart() comes back empty like a Redis that lost its data.
 * In CI (CI=true) a missing redis-server fails the run; elsewhere its tests are
 * skipped with a loud message.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

const bin = process.env.PARLEY_REDIS_SERVER ?? "redis-server";

export interface RedisHandle {
	url: string;
	port: number;
	/** SIGKILL, stay down for `downMs`, start again on the same port with no data. */
	restart(downMs?: number): Promise<void>;
	stop(): Promise<void>;
}

/** undefined when redis-server can be run; otherwise the reason to skip (outside CI) — in CI it throws. */
export function redisMissing(): string | undefined {
	if (!spawnSync(bin, ["--version"]).error) return undefined;
	const reason = `${bin} not found: install Redis 7 (apt-get install redis-server) or set PARLEY_REDIS_SERVER`;
	if (process.env.CI === "true") throw new Error(`Redis tests cannot run in CI: ${reason}`);
	console.warn(`\n!!! SKIPPING REDIS TESTS: ${reason} !!!\n`);
	return reason;
}

export async function startRedis(): Promise<RedisHandle> {
	const missing = redisMissing();
	if (missing) throw new Error(missing);
	const port = await freePort();
	const dir = mkdtempSync(path.join(os.tmpdir(), "parley-redis-"));
	let child = await launch(port, dir);
	// A test that crashes must not leave redis-server behind.
	const reap = () => child.kill("SIGKILL");
	process.once("exit", reap);
	return {
		url: `redis://127.0.0.1:${port}`,
		port,
		async restart(downMs = 0) {
			await kill(child);
			if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
			child = await launch(port, dir);
		},
		async stop() {
			process.off("exit", reap);
			await kill(child);
			rmSync(dir, { recursive: true, force: true });
		},
	};
}

async function launch(port: number, dir: string): Promise<ChildProcess> {
	const child = spawn(bin, ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no", "--daemonize", "no"], {
		stdio: ["ignore", "ignore", "inherit"],
	});
	let exited = false;
	child.once("exit", () => (exited = true));
	for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
		if (exited) throw new Error(`redis-server exited at start (port ${port})`);
		if (await pong(port)) return child;
	}
	child.kill("SIGKILL");
	throw new Error(`redis-server did not answer PING on port ${port} within 10 s`);
}

async function kill(child: ChildProcess): Promise<void> {
	if (child.exitCode !== null || child.signalCode !== null) return;
	const exited = new Promise((r) => child.once("exit", r));
	child.kill("SIGKILL");
	await exited;
}

function pong(port: number): Promise<boolean> {
	return new Promise((resolve) => {
		const socket = net.connect(port, "127.0.0.1");
		const done = (ok: boolean) => (socket.destroy(), resolve(ok));
		socket.setTimeout(500, () => done(false));
		socket.once("connect", () => socket.write("PING\r\n"));
		socket.once("data", (d) => done(d.toString().startsWith("+PONG")));
		socket.once("error", () => done(false));
	});
}

function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = net.createServer();
		server.once("error", reject);
		server.listen(0, "127.0.0.1", () => {
			const { port } = server.address() as net.AddressInfo;
			server.close(() => resolve(port));
		});
	});
}
