/** Resident memory and CPU time of a process, and of the whole machine, read from /proc (Linux only). */
import { execFileSync } from "node:child_process";
import fs from "node:fs";

/** VmRSS in MB, or undefined once the process is gone. */
export function rssMB(pid: number): number | undefined {
	try {
		const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
		const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
		return kb === undefined ? undefined : Number(kb) / 1024;
	} catch {
		return undefined;
	}
}

let clockTicks: number | undefined;

function ticksPerSecond(): number {
	if (clockTicks === undefined) {
		try {
			clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
		} catch {
			clockTicks = 100;
		}
	}
	return clockTicks;
}

/** User + system CPU seconds the process has used so far. */
export function cpuSeconds(pid: number): number | undefined {
	try {
		const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
		// The command name is in parentheses and may contain spaces; fields are counted after it.
		const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
		return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
	} catch {
		return undefined;
	}
}

/** Busy and total jiffies over all cores, for the share of the machine in use. */
export function machineJiffies(): { busy: number; total: number } {
	const cpu = fs.readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
	const total = cpu.reduce((a, b) => a + b, 0);
	const idle = (cpu[3] ?? 0) + (cpu[4] ?? 0);
	return { busy: total - idle, total };
}

/** CPU seconds of several processes together (a cluster's nodes); undefined if none is left. */
export function cpuSecondsOf(pids: number[]): number | undefined {
	const each = pids.map(cpuSeconds).filter((s): s is number => s !== undefined);
	return each.length === 0 ? undefined : each.reduce((a, b) => a + b, 0);
}

/** Samples the summed RSS of a server's processes on an interval and keeps the peak. */
export class RssSampler {
	peakMB = 0;
	lastMB = 0;
	private readonly timer: NodeJS.Timeout;

	constructor(private readonly pids: () => number[], intervalMs = 250) {
		this.sample();
		this.timer = setInterval(() => this.sample(), intervalMs);
	}

	sample(): number | undefined {
		const each = this.pids().map(rssMB).filter((mb): mb is number => mb !== undefined);
		const mb = each.length === 0 ? undefined : each.reduce((a, b) => a + b, 0);
		if (mb !== undefined) {
			this.lastMB = mb;
			this.peakMB = Math.max(this.peakMB, mb);
		}
		return mb;
	}

	stop(): void {
		clearInterval(this.timer);
	}
}

/** Percent of all cores busy over the next `ms`: other work on the machine skews every figure. */
export async function machineBusyPctOver(ms: number): Promise<number> {
	const before = machineJiffies();
	await new Promise((r) => setTimeout(r, ms));
	const after = machineJiffies();
	return Math.round(((after.busy - before.busy) / (after.total - before.total)) * 1000) / 10;
}

/**
 * Waits (at most `maxMs`) until the machine is nearly idle, so that one run's
 * tail (a server exiting, the kernel writing its database back) does not land
 * in the next run's window. Returns the busy share last seen.
 */
export async function waitUntilQuiet(maxMs: number, busyPct = 10): Promise<number> {
	const deadline = performance.now() + maxMs;
	let busy = await machineBusyPctOver(500);
	while (busy > busyPct && performance.now() < deadline) busy = await machineBusyPctOver(500);
	return busy;
}
