/**
 * Runs a real Parley server as a child process on a free port with its own
 * data directory, and connects real socket.io clients to it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { io, type Socket } from "socket.io-client";
import type { ActionName, ParamsOf, ResultOf, WireError } from "../../contract";
import { freePort } from "../../scripts/lib/processes";

const ROOT = path.resolve(__dirname, "../..");

export { freePort };

export interface ServerHandle {
	url: string;
	/** Every gateway of a cluster (url is the first); absent for one process. */
	urls?: string[];
	port: number;
	dataDir: string;
	process: ChildProcess;
	log: () => string;
	stop: (signal?: NodeJS.Signals) => Promise<void>;
	restart: () => Promise<void>;
}

export async function startServer(env: Record<string, string> = {}, reuse?: { port: number; dataDir: string }): Promise<ServerHandle> {
	const port = reuse?.port ?? (await freePort());
	const dataDir = reuse?.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "parley-test-"));
	let output = "";
	const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "server.ts")], {
		cwd: ROOT,
		env: { ...process.env, PORT: String(port), PARLEY_DATA_DIR: dataDir, PARLEY_LOG_LEVEL: "warn", PARLEY_HOST: "127.0.0.1", ...env },
		stdio: ["ignore", "pipe", "pipe"],
	});
	child.stdout!.on("data", (d) => (output += d));
	child.stderr!.on("data", (d) => (output += d));
	const url = `http://127.0.0.1:${port}`;
	await waitForHealth(url, child, () => output);

	const handle: ServerHandle = {
		url,
		port,
		dataDir,
		process: child,
		log: () => output,
		stop: (signal = "SIGTERM") =>
			new Promise<void>((resolve) => {
				if (child.exitCode !== null || child.signalCode !== null) return resolve();
				child.once("exit", () => resolve());
				child.kill(signal);
			}),
		restart: async () => {
			await handle.stop();
			const next = await startServer(env, { port, dataDir });
			handle.process = next.process;
			handle.log = next.log;
			handle.stop = next.stop;
		},
	};
	return handle;
}

async function waitForHealth(url: string, child: ChildProcess, log: () => string): Promise<void> {
	const deadline = Date.now() + 20_000;
	while (Date.now() < deadline) {
		if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}:\n${log()}`);
		try {
			const res = await fetch(`${url}/api/health`);
			if (res.ok) return;
		} catch {
			// not listening yet
		}
		await sleep(50);
	}
	child.kill("SIGKILL");
	throw new Error(`server did not become healthy:\n${log()}`);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function devToken(url: string, userId: string, role = "user"): Promise<string> {
	const res = await fetch(`${url}/api/dev/token`, {
		method: "POST",
		headers: { "content-type": "application/json" },
		body: JSON.stringify({ userId, name: userId, role }),
	});
	if (!res.ok) throw new Error(`dev token failed: ${res.status} ${await res.text()}`);
	return ((await res.json()) as { token: string }).token;
}

/** A bare socket.io client, as an independent implementation of the contract would use it. */
export class RawClient {
	readonly events: { event: string; payload: any }[] = [];

	private constructor(readonly socket: Socket) {
		socket.onAny((event: string, payload: unknown) => this.events.push({ event, payload }));
	}

	static async connect(url: string, token: string, deviceId: string): Promise<RawClient> {
		const socket = io(url, { auth: { token, deviceId }, transports: ["websocket"], reconnection: false, forceNew: true });
		await new Promise<void>((resolve, reject) => {
			socket.once("connect", () => resolve());
			socket.once("connect_error", (err) => reject(err));
		});
		return new RawClient(socket);
	}

	/** Resolves with the result, rejects with the server's {code, type, message} error. */
	call<A extends ActionName>(action: A, params: ParamsOf<A>): Promise<ResultOf<A>>;
	call(action: string, params: unknown): Promise<any>;
	call(action: string, params: unknown): Promise<unknown> {
		return new Promise((resolve, reject) => {
			this.socket.timeout(10_000).emit("call", action, params, (timeout: Error | null, err: WireError | null, res: unknown) => {
				if (timeout) reject(timeout);
				else if (err) reject(Object.assign(new Error(err.message), err));
				else resolve(res);
			});
		});
	}

	of(event: string): any[] {
		return this.events.filter((e) => e.event === event).map((e) => e.payload);
	}

	/** Waits until `predicate` holds for some received event of that name. */
	async waitFor(event: string, predicate: (payload: any) => boolean = () => true, timeoutMs = 5000): Promise<any> {
		const deadline = Date.now() + timeoutMs;
		for (;;) {
			const hit = this.of(event).find(predicate);
			if (hit !== undefined) return hit;
			if (Date.now() > deadline) throw new Error(`no '${event}' event matched within ${timeoutMs} ms; got ${JSON.stringify(this.events.map((e) => e.event))}`);
			await sleep(10);
		}
	}

	close(): void {
		this.socket.disconnect();
	}
}

/** Asserts a call fails with the given error type and code. */
export async function expectError(promise: Promise<unknown>, type: string, code: number): Promise<WireError> {
	try {
		await promise;
	} catch (err) {
		const e = err as WireError;
		if (e.type !== type || e.code !== code) {
			throw new Error(`expected ${type}/${code}, got ${e.type}/${e.code}: ${e.message}`);
		}
		return e;
	}
	throw new Error(`expected ${type}/${code}, but the call succeeded`);
}
