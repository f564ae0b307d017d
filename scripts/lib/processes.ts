/**
 * Child processes of the bench and the cluster launcher, kept in one registry
 * so that none outlives its parent: on exit, on SIGINT/SIGTERM/SIGHUP and, for
 * children in a process group of their own, even when the parent is SIGKILLed,
 * whatever is still running is killed and the temp directories are removed.
 */
import { spawn, type ChildProcess, type StdioOptions } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

export const ROOT = path.resolve(__dirname, "../..");

const running = new Set<ChildProcess>();
/** Children that lead a process group: signals go to the whole group. */
const groupLeaders = new WeakSet<ChildProcess>();
/** One watcher per group leader, killing its group if this process vanishes. */
const reapers = new Map<ChildProcess, ChildProcess>();
const tempDirs = new Set<string>();

/** A fresh directory under the OS temp dir, removed when this process ends however it ends. */
export function makeTempDir(prefix: string): string {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
	tempDirs.add(dir);
	return dir;
}

export function removeTempDir(dir: string): void {
	fs.rmSync(dir, { recursive: true, force: true });
	tempDirs.delete(dir);
}

export interface SpawnOptions {
	/** Added to this process's environment; an undefined value removes the variable. */
	env?: Record<string, string | undefined>;
	stdio?: StdioOptions;
	/** Own process group (setsid), signalled as a whole and reaped even if this process is SIGKILLed. */
	group?: boolean;
}

/** Spawns `command` from the repo root and tracks it until it exits. */
export function spawnTracked(command: string, args: string[], { env = {}, stdio = ["ignore", "pipe", "pipe"], group = false }: SpawnOptions = {}): ChildProcess {
	installExitHooks();
	const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio, detached: group });
	running.add(child);
	if (group && child.pid !== undefined) {
		groupLeaders.add(child);
		reapers.set(child, spawnReaper(child.pid));
	}
	child.once("exit", () => {
		running.delete(child);
		reapers.get(child)?.kill("SIGKILL");
		reapers.delete(child);
	});
	return child;
}

export interface NodeScript extends SpawnOptions {
	script: string;
	args?: string[];
	/** Flags for node itself, e.g. --cpu-prof. */
	nodeFlags?: string[];
}

/** Runs a TypeScript file of this repo under node + tsx, the same way `npm start` runs the server. */
export function spawnNodeScript({ script, args = [], nodeFlags = [], ...options }: NodeScript): ChildProcess {
	return spawnTracked(process.execPath, [...nodeFlags, "--import", "tsx", path.join(ROOT, script), ...args], options);
}

export const hasExited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null;

/** Sends `signal` to the child, or to its whole process group if it leads one. */
export function signalChild(child: ChildProcess, signal: NodeJS.Signals): void {
	if (child.pid === undefined) return;
	try {
		if (groupLeaders.has(child)) process.kill(-child.pid, signal);
		else child.kill(signal);
	} catch {
		// already gone
	}
}

/** Resolves once the child has exited (at once if it already has). */
export function exitOf(child: ChildProcess): Promise<void> {
	if (hasExited(child)) return Promise.resolve();
	return new Promise((resolve) => child.once("exit", () => resolve()));
}

/** SIGTERM, then SIGKILL if it has not gone within `graceMs`. */
export async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
	if (hasExited(child)) return;
	const force = setTimeout(() => signalChild(child, "SIGKILL"), graceMs);
	signalChild(child, "SIGTERM");
	await exitOf(child);
	clearTimeout(force);
}

/** Kills every tracked child (and its group) and removes every temp dir, synchronously: safe in an exit hook. */
export function killAllChildren(): void {
	for (const child of running) if (!hasExited(child)) signalChild(child, "SIGKILL");
	for (const reaper of reapers.values()) reaper.kill("SIGKILL");
	for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
}

/**
 * Polls for this process and the group; when this process is gone (even SIGKILLed, which no
 * hook sees), kills the group. Detached so a Ctrl-C meant for us does not take it first.
 */
const REAPER_SCRIPT = 'while kill -0 "$1" 2>/dev/null && kill -0 -"$2" 2>/dev/null; do sleep 1; done; kill -KILL -"$2" 2>/dev/null';

function spawnReaper(pgid: number): ChildProcess {
	const reaper = spawn("sh", ["-c", REAPER_SCRIPT, "parley-reaper", String(process.pid), String(pgid)], { detached: true, stdio: "ignore" });
	reaper.on("error", () => undefined);
	reaper.unref();
	return reaper;
}

let hooksInstalled = false;

/**
 * Kills the children when this process exits. On a signal it does so only if nobody else
 * listens for it (the bench and `npm run cluster` have their own handlers, which stop
 * gracefully), and then dies of the signal as it would have without the hook.
 */
function installExitHooks(): void {
	if (hooksInstalled) return;
	hooksInstalled = true;
	process.on("exit", killAllChildren);
	for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
		const onSignal = () => {
			if (process.listenerCount(signal) > 1) return;
			killAllChildren();
			process.removeListener(signal, onSignal);
			process.kill(process.pid, signal);
		};
		process.on(signal, onSignal);
	}
}

/** Calls `onLine` for every complete line the child writes to stdout or stderr. */
export function onLines(child: ChildProcess, onLine: (line: string) => void): void {
	for (const stream of [child.stdout, child.stderr]) {
		if (!stream) continue;
		let partial = "";
		stream.setEncoding("utf8");
		stream.on("data", (chunk: string) => {
			const lines = (partial + chunk).split("\n");
			partial = lines.pop()!;
			for (const line of lines) onLine(line.replace(/\r$/, ""));
		});
		stream.on("end", () => {
			if (partial) onLine(partial);
			partial = "";
		});
	}
}

/** The last `capacity` lines of something, oldest first. */
export class RecentLines {
	private readonly lines: string[] = [];

	constructor(private readonly capacity = 500) {}

	push(line: string): void {
		this.lines.push(line);
		if (this.lines.length > this.capacity) this.lines.splice(0, this.lines.length - this.capacity);
	}

	last(n = this.capacity): string[] {
		return this.lines.slice(-n);
	}
}

/** `count` distinct free loopback ports: all are held open until every one is picked, so none repeats. */
export async function freePorts(count: number): Promise<number[]> {
	const servers: net.Server[] = [];
	try {
		for (let i = 0; i < count; i++) {
			const server = net.createServer();
			servers.push(server);
			await new Promise<void>((resolve, reject) => {
				server.once("error", reject);
				server.listen(0, "127.0.0.1", () => resolve());
			});
		}
		return servers.map((s) => (s.address() as net.AddressInfo).port);
	} finally {
		await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
	}
}

export const freePort = async (): Promise<number> => (await freePorts(1))[0]!;

/** True if something accepts TCP connections at host:port within `timeoutMs`. */
export function portOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
	return new Promise((resolve) => {
		const socket = net.connect({ host, port });
		const done = (open: boolean) => {
			socket.destroy();
			resolve(open);
		};
		socket.setTimeout(timeoutMs, () => done(false));
		socket.once("connect", () => done(true));
		socket.once("error", () => done(false));
	});
}
