/**
 * Every process the bench starts goes through here, so that none outlives it:
 * on normal exit, on an error, on Ctrl-C or on the watchdog, whatever is
 * still running is killed and its temp directory removed.
 */
import { spawn, type ChildProcess, type StdioOptions } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export const ROOT = path.resolve(__dirname, "..");

const running = new Set<ChildProcess>();
const tempDirs = new Set<string>();

/** A fresh directory under the OS temp dir, removed when the bench ends however it ends. */
export function makeTempDir(prefix: string): string {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
	tempDirs.add(dir);
	return dir;
}

export function removeTempDir(dir: string): void {
	fs.rmSync(dir, { recursive: true, force: true });
	tempDirs.delete(dir);
}

export interface NodeScript {
	script: string;
	args?: string[];
	/** Flags for node itself, e.g. --cpu-prof. */
	nodeFlags?: string[];
	env?: Record<string, string>;
	stdio?: StdioOptions;
}

/** Runs a TypeScript file of this repo under node + tsx, the same way `npm start` runs the server. */
export function spawnNodeScript({ script, args = [], nodeFlags = [], env = {}, stdio = ["ignore", "pipe", "pipe"] }: NodeScript): ChildProcess {
	const child = spawn(process.execPath, [...nodeFlags, "--import", "tsx", path.join(ROOT, script), ...args], {
		cwd: ROOT,
		env: { ...process.env, ...env },
		stdio,
	});
	running.add(child);
	child.once("exit", () => running.delete(child));
	return child;
}

export const hasExited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null;

/** SIGTERM, then SIGKILL if it has not gone within `graceMs`. */
export function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
	if (hasExited(child)) return Promise.resolve();
	return new Promise((resolve) => {
		const force = setTimeout(() => child.kill("SIGKILL"), graceMs);
		child.once("exit", () => {
			clearTimeout(force);
			resolve();
		});
		child.kill("SIGTERM");
	});
}

function killAll(): void {
	for (const child of running) if (!hasExited(child)) child.kill("SIGKILL");
	for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
}

let installed = false;

/** Installs the exit hooks and a watchdog that ends the whole bench after `budgetMs`. */
export function guardChildren(budgetMs: number): void {
	if (installed) return;
	installed = true;
	process.on("exit", killAll);
	for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
		process.on(signal, () => {
			console.error(`\nbench: ${signal}, stopping children`);
			killAll();
			process.exit(130);
		});
	}
	const watchdog = setTimeout(() => {
		console.error(`bench: exceeded its time budget of ${Math.round(budgetMs / 1000)} s, giving up`);
		killAll();
		process.exit(1);
	}, budgetMs);
	watchdog.unref();
}
