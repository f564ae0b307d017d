/**
 * Runs a real Parley server as a child process on a free port with its own
 * data directory, and connects real socket.io clients to it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { io, type Socket } from "socket.io-client";
import type { ActionName, Message, ParamsOf, ResultOf, WireError } from "../../contract";
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

/** Polls `check` until it holds; fails naming `what` after `timeoutMs`. */
export async function until(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!check()) {
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await sleep(20);
	}
}

/** Anything that calls socket actions: a RawClient or the SDK's ParleyClient. */
export interface Caller {
	call<A extends ActionName>(action: A, params: ParamsOf<A>): Promise<ResultOf<A>>;
}

/** The whole stored history of a conversation, oldest first, paged through messages.history. */
export async function storedHistory(client: Caller, conversationId: string): Promise<Message[]> {
	const all: Message[] = [];
	for (let afterSeq = 0; ; ) {
		const page = await client.call("messages.history", { conversationId, afterSeq, limit: 200 });
		if (page.length === 0) return all;
		all.push(...page);
		afterSeq = page[page.length - 1]!.seq;
	}
}

/**
 * Pages messages.sync from `cursors` until the server says there is no more, moving each
 * cursor to the highest seq a page held, exactly as a device would; returns the pages as
 * the server sent them (nothing deduplicated, so a repeat or a gap stays visible).
 */
export async function syncPages(client: Caller, cursors: Record<string, number>, limit: number): Promise<Message[][]> {
	const at = { ...cursors };
	const pages: Message[][] = [];
	for (;;) {
		const res = await client.call("messages.sync", { cursors: at, limit });
		pages.push(res.messages);
		for (const c of res.conversations) at[c.id] ??= 0;
		for (const m of res.messages) at[m.conversationId] = Math.max(at[m.conversationId] ?? 0, m.seq);
		if (!res.more) return pages;
		if (pages.length >= 10_000) throw new Error("messages.sync kept answering more: true");
	}
}

export async function devToken(url: string, userId: string, role = "user"): Promise<string> {
	const res = await fetch(`${url}/api/dev/token`, {
		method: "POST",
		headers: { "content-type": "application/json" },
		body: JSON.stringify({ userId, name: userId, role }),
	});
	if (!res.ok) throw new Error(`dev token failed: ${res.status} ${await res.text()}`);
	return ((await res.json()) as { token: string }).token;
}

/** A server event as a RawClient received it; `at` is its arrival time (Date.now()). */
export interface Arrival {
	event: string;
	payload: any;
	at: number;
}

/** A bare socket.io client, as an independent implementation of the contract would use it. */
export class RawClient {
	readonly events: Arrival[] = [];

	private constructor(readonly socket: Socket) {
		socket.onAny((event: string, payload: unknown) => this.events.push({ event, payload, at: Date.now() }));
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
		return (await this.arrivalOf(event, predicate, timeoutMs)).payload;
	}

	/** Like waitFor, with the arrival time; only events received after `since` (an arrival) count. */
	async arrivalOf(event: string, predicate: (payload: any) => boolean = () => true, timeoutMs = 5000, since?: Arrival): Promise<Arrival> {
		const deadline = Date.now() + timeoutMs;
		for (;;) {
			const from = since ? this.events.indexOf(since) + 1 : 0;
			const hit = this.events.slice(from).find((e) => e.event === event && predicate(e.payload));
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
