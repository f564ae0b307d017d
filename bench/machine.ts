/** What the figures were measured on: they mean little without it. */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import { ROOT } from "./children";

export interface MachineInfo {
	cpus: number;
	cpuModel: string;
	memoryGB: number;
	node: string;
	kernel: string;
	/** Share of all cores busy in the second before the bench started (should be near 0). */
	busyBeforePct: number | null;
}

export function describeMachine(): MachineInfo {
	let cpuModel = os.cpus()[0]?.model ?? "unknown";
	try {
		const line = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync("/proc/cpuinfo", "utf8"));
		if (line?.[1]) cpuModel = line[1].trim();
	} catch {
		// not Linux: os.cpus() is good enough
	}
	return {
		cpus: os.availableParallelism(),
		cpuModel,
		memoryGB: Math.round(os.totalmem() / 2 ** 30),
		node: process.version,
		kernel: `${os.type()} ${os.release()}`,
		busyBeforePct: null,
	};
}

/** The code measured: commit, and whether the working tree differed from it. */
export function describeRevision(): { commit: string; dirty: boolean } | null {
	try {
		const git = (...args: string[]) => execFileSync("git", args, { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
		return { commit: git("rev-parse", "--short", "HEAD"), dirty: git("status", "--porcelain", "--untracked-files=no") !== "" };
	} catch {
		return null;
	}
}
