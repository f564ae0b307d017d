/** Turns the runs into the printed tables and the verdicts against design.md §6. */
import type { LoadRun } from "./load-run";
import type { MachineInfo } from "./machine";
import type { BenchOptions } from "./options";
import type { StartupResult } from "./startup";
import type { TargetName } from "./targets";

export interface Verdict {
	id: "T1" | "T2" | "T4" | "T8";
	what: string;
	measured: string;
	target: string;
	/** null when the run needed for it did not happen (e.g. T1 without --baseline). */
	pass: boolean | null;
}

export interface BenchReport {
	command: string;
	date: string;
	revision: { commit: string; dirty: boolean } | null;
	machine: MachineInfo;
	options: BenchOptions;
	startup: StartupResult | null;
	runs: LoadRun[];
	verdicts: Verdict[];
}

type Cell = string | number | null | undefined;

/** Above this much CPU (% of one core) used by other processes during a window, a run's figures are suspect. */
const NOISY_OTHER_CPU_PCT = 20;

/** A target's saturating throughput: its best delivered msg/s over the windows tried. */
export function bestThroughput(runs: LoadRun[], target: TargetName): LoadRun | undefined {
	return runs
		.filter((r) => r.scenario === "throughput" && r.target === target && r.result)
		.sort((a, b) => b.result!.perSecond.delivered - a.result!.perSecond.delivered)[0];
}

const latencyRun = (runs: LoadRun[], target: TargetName) => runs.find((r) => r.scenario === "latency" && r.target === target);

export function verdictsOf(report: Omit<BenchReport, "verdicts">): Verdict[] {
	const noisy = (...runs: (LoadRun | undefined)[]) =>
		runs.some((r) => r && (otherCpuPct(r, report.machine.cpus) ?? 0) > NOISY_OTHER_CPU_PCT) ? " [noisy]" : "";
	if (report.options.profile === "cluster") return clusterVerdicts(report, noisy);
	const verdicts: Verdict[] = [];
	const parleyT = bestThroughput(report.runs, "parley");
	const relayT = bestThroughput(report.runs, "relay");
	if (parleyT) {
		const p = parleyT.result!.perSecond.delivered;
		const r = relayT?.result!.perSecond.delivered;
		const ratio = r ? p / r : null;
		verdicts.push({
			id: "T1",
			what: "best delivered msg/s vs bare relay",
			measured: `${int(p)} (K=${parleyT.window}) vs ${relayT ? `${int(r!)} (K=${relayT.window})` : "(no --baseline)"}${ratio === null ? "" : ` = ${pct(ratio)}`}${noisy(parleyT, relayT)}`,
			target: ">= 80%",
			pass: ratio === null ? null : ratio >= 0.8,
		});
	}
	const parleyLRun = latencyRun(report.runs, "parley");
	const parleyL = parleyLRun?.result;
	if (parleyL) {
		const clean = problemsOf(parleyL) === "none";
		verdicts.push({
			id: "T2",
			what: `delivery latency at ${int(report.options.rate)} msg/s`,
			measured: `p50 ${ms(parleyL.delivery.p50)}, p99 ${ms(parleyL.delivery.p99)}${clean ? "" : " (with errors/missing)"}${noisy(parleyLRun)}`,
			target: "p50 <= 5 ms, p99 <= 50 ms",
			pass: clean && parleyL.delivery.p50 <= 5 && parleyL.delivery.p99 <= 50,
		});
	}
	const startup = report.startup?.median;
	if (startup) {
		const ready = startup.readyLineMs ?? startup.healthMs;
		verdicts.push({
			id: "T8",
			what: "embedded start (median)",
			measured: `ready ${ms(ready, 0)}, idle RSS ${mb(startup.idleRssMB)}`,
			target: "ready <= 2 s, idle RSS <= 150 MB",
			pass: ready <= 2000 && startup.idleRssMB !== null && startup.idleRssMB <= 150,
		});
	}
	return verdicts;
}

/**
 * T4: a cluster of 2 gateways and 2 core nodes carries at least 5,000 msg/s with p99 <= 100 ms.
 * Judged on the open-loop run: every offered message delivered, at an offered rate of 5,000 or more.
 */
function clusterVerdicts(report: Omit<BenchReport, "verdicts">, noisy: (...runs: (LoadRun | undefined)[]) => string): Verdict[] {
	const verdicts: Verdict[] = [];
	const best = bestThroughput(report.runs, "parley");
	const run = latencyRun(report.runs, "parley");
	const r = run?.result;
	if (r) {
		const clean = problemsOf(r) === "none";
		const keptUp = r.perSecond.delivered >= 0.99 * report.options.rate;
		verdicts.push({
			id: "T4",
			what: `cluster at ${int(report.options.rate)} msg/s offered`,
			measured:
				`delivered ${int(r.perSecond.delivered)}/s, p50 ${ms(r.delivery.p50)}, p99 ${ms(r.delivery.p99)}` +
				`${best ? `; best closed-loop ${int(best.result!.perSecond.delivered)}/s` : ""}${clean ? "" : " (with errors/missing)"}${noisy(run)}`,
			target: ">= 5,000 msg/s, p99 <= 100 ms",
			pass: clean && keptUp && report.options.rate >= 5000 && r.delivery.p99 <= 100,
		});
	}
	return verdicts;
}

export function printReport(report: BenchReport): void {
	const { machine, options } = report;
	console.log(`\nParley bench · ${options.profile} profile · ${report.date}`);
	console.log(`${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGB} GB, node ${machine.node}, ${machine.kernel}`);
	const busy = machine.busyBeforePct;
	if (busy !== null) console.log(`machine busy before the bench: ${busy}%${busy > 20 ? "  <-- other load: figures are low and noisy" : ""}`);
	console.log(`$ ${report.command}${report.revision ? `   (at ${report.revision.commit}${report.revision.dirty ? ", with uncommitted changes" : ""})` : ""}`);
	console.log(
		`users ${options.users}, conversations ${options.conversations} (both members send: ${options.conversations * 2} lanes), ` +
			`${options.durationS} s measured after ${options.warmupS} s warm-up per run` +
			`${options.receipts ? ", receipts on" : ""}${options.relaySummaries ? ", relay emits summaries" : ""}`,
	);

	if (report.startup) printStartup(report.startup);
	const throughput = report.runs.filter((r) => r.scenario === "throughput");
	if (throughput.length > 0) printThroughput(throughput, options.conversations * 2, machine.cpus);
	const latency = report.runs.filter((r) => r.scenario === "latency");
	if (latency.length > 0) printLatency(latency, options.rate, machine.cpus);
	for (const run of report.runs) printTroubles(run, machine.cpus);

	console.log("\ntargets (design.md §6)");
	table(
		["", "what", "measured", "target", ""],
		report.verdicts.map((v) => [v.id, v.what, v.measured, v.target, v.pass === null ? "n/a" : v.pass ? "PASS" : "FAIL"]),
	);
}

function printStartup(startup: StartupResult): void {
	console.log(`\nstartup (T8): ${startup.runs.length} run(s), fresh data dir each`);
	const rows: Cell[][] = [
		["spawn -> /api/health 200", ...startup.runs.map((r) => ms(r.healthMs, 0)), ms(startup.median.healthMs, 0)],
		["spawn -> \"Parley ready\" line", ...startup.runs.map((r) => ms(r.readyLineMs, 0)), ms(startup.median.readyLineMs, 0)],
		["  (server's own figure)", ...startup.runs.map((r) => ms(r.selfReportedMs, 0)), ms(startup.median.selfReportedMs, 0)],
		["idle RSS 2 s after ready", ...startup.runs.map((r) => mb(r.idleRssMB)), mb(startup.median.idleRssMB)],
	];
	table(["", ...startup.runs.map((_, i) => `run ${i + 1}`), "median"], rows);
}

/** One row per run: the windows are a sweep, and the interesting part is how each server bends. */
function printThroughput(runs: LoadRun[], lanes: number, cpus: number): void {
	console.log(`\nthroughput (T1): closed loop, K sends in flight per lane (${lanes} lanes); latency here is mostly queueing`);
	console.log("  CPU in % of one core over the measured window; \"other\" is the rest of the machine: other processes, and kernel time for loopback networking (softirq) that no process is charged for");
	const rows = runs.map((run): Cell[] => {
		const r = run.result;
		if (!r) return [run.target, run.window, "failed"];
		return [
			run.target,
			run.window,
			int(r.perSecond.delivered),
			int(r.perSecond.acked),
			ms(r.delivery.p50, 1),
			ms(r.delivery.p99, 1),
			ms(r.ack.p50, 1),
			ms(r.ack.p99, 1),
			pctRaw(run.server?.cpuPct),
			pctRaw(r.loadgenCpuPct),
			pctRaw(otherCpuPct(run, cpus)),
			mb(run.server?.rssPeakMB),
			problemsOf(r),
		];
	});
	table(["target", "K", "delivered/s", "acked/s", "deliv p50", "deliv p99", "ack p50", "ack p99", "server CPU", "gen CPU", "other CPU", "RSS peak", "problems"], rows);
	const best = (["parley", "relay"] as const).map((t) => bestThroughput(runs, t)).filter((r): r is LoadRun => r !== undefined);
	for (const run of best) console.log(`  ${run.target}: other events per message: ${otherEventsOf(run)}`);
	if (best.length === 2) console.log(`  best vs best: parley/relay = ${pct(best[0]!.result!.perSecond.delivered / best[1]!.result!.perSecond.delivered)}`);
}

function printLatency(runs: LoadRun[], rate: number, cpus: number): void {
	console.log(`\nlatency (T2): open loop at ${int(rate)} msg/s, from each message's intended send time`);
	const names = runs.map((r) => r.target);
	const cells = (pick: (run: LoadRun) => Cell): Cell[] => runs.map((run) => (run.result ? pick(run) : "failed"));
	const rows: Cell[][] = [
		["sent / acked / delivered per s", ...cells((x) => `${int(x.result!.perSecond.sent)} / ${int(x.result!.perSecond.acked)} / ${int(x.result!.perSecond.delivered)}`)],
		["delivery p50 / p90", ...cells((x) => `${ms(x.result!.delivery.p50)} / ${ms(x.result!.delivery.p90)}`)],
		["delivery p99 / p99.9", ...cells((x) => `${ms(x.result!.delivery.p99)} / ${ms(x.result!.delivery.p999)}`)],
		["delivery max", ...cells((x) => ms(x.result!.delivery.max))],
		["delivery samples", ...cells((x) => int(x.result!.delivery.count))],
		["ack p50 / p99", ...cells((x) => `${ms(x.result!.ack.p50)} / ${ms(x.result!.ack.p99)}`)],
		["generator max lag behind schedule", ...cells((x) => ms(x.result!.maxSendLagMs))],
		["problems", ...cells((x) => problemsOf(x.result!))],
		["other events per message", ...cells((x) => otherEventsOf(x))],
		["server CPU (% of 1 core)", ...cells((x) => pctRaw(x.server?.cpuPct))],
		["generator CPU (% of 1 core)", ...cells((x) => pctRaw(x.result!.loadgenCpuPct))],
		["other CPU on the machine (% of 1 core)", ...cells((x) => pctRaw(otherCpuPct(x, cpus)))],
		["server RSS peak / 1 s after", ...cells((x) => `${mb(x.server?.rssPeakMB)} / ${mb(x.server?.rssAfterMB)}`)],
		["setup (tokens, sockets, opens)", ...cells((x) => ms(x.result!.setupMs, 0))],
	];
	table(["", ...names], rows);
}

function printTroubles(run: LoadRun, cpus: number): void {
	const label = run.scenario === "throughput" ? `${run.target} throughput K=${run.window}` : `${run.target} latency`;
	const other = otherCpuPct(run, cpus);
	if (other !== null && other > NOISY_OTHER_CPU_PCT) {
		console.log(`\n! ${label}: other processes used ${other.toFixed(0)}% of a core during the window; its figures are pessimistic [noisy]`);
	}
	if (run.error) console.log(`\n! ${label}: ${run.error}`);
	if (run.server?.died) console.log(`\n! ${label}: the server ${run.server.died} during the run`);
	if (run.server && run.server.logLines > 0) {
		console.log(`\n${label}: the server logged ${run.server.logLines} line(s), first ones:`);
		for (const line of run.server.logSample) console.log(`  ${line}`);
	}
	if (run.profile) {
		const profile = run.profile;
		console.log(`\nwhere the ${label} server's time went (busy ${int(profile.busyMs)} ms, idle ${int(profile.idleMs)} ms; profiler on, so its figures above are lower)`);
		console.log(`  ${profile.file}`);
		table(["package", "self ms", "%"], profile.packages.map((s) => [s.name, int(s.selfMs), `${s.pct}%`]));
		table(["function", "self ms", "%"], profile.functions.map((s) => [s.name, int(s.selfMs), `${s.pct}%`]));
	}
}

/** CPU used by neither the server nor the generator (the orchestrator's share is tiny). */
function otherCpuPct(run: LoadRun, cpus: number): number | null {
	const machine = run.server?.machineBusyPct;
	const server = run.server?.cpuPct;
	if (machine === null || machine === undefined || server === null || server === undefined || !run.result) return null;
	return Math.max(0, machine * cpus - server - run.result.loadgenCpuPct);
}

function problemsOf(r: NonNullable<LoadRun["result"]>): string {
	const found: string[] = Object.entries(r.errors).map(([type, n]) => `${type} ${n}`);
	if (r.missing) found.push(`missing ${r.missing}`);
	if (r.unacked) found.push(`unacked ${r.unacked}`);
	if (r.duplicates) found.push(`dup ${r.duplicates}`);
	if (r.outOfOrder) found.push(`out-of-order ${r.outOfOrder}`);
	if (r.disconnects) found.push(`disconnects ${r.disconnects}`);
	if (r.receiptsRefused) found.push(`receipts.mark refused ${r.receiptsRefused}`);
	return found.length === 0 ? "none" : found.join(", ");
}

function otherEventsOf(run: LoadRun): string {
	const sent = run.result!.totals.sent || 1;
	const entries = Object.entries(run.result!.otherEvents);
	return entries.length === 0 ? "none" : entries.map(([event, n]) => `${event} ${(n / sent).toFixed(2)}`).join(", ");
}

function table(headers: Cell[], rows: Cell[][]): void {
	const all = [headers, ...rows].map((row) => row.map((c) => (c === null || c === undefined ? "-" : String(c))));
	const widths = headers.map((_, i) => Math.max(...all.map((row) => (row[i] ?? "").length)));
	for (const row of all) {
		const line = row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
		console.log(`  ${line.trimEnd()}`);
	}
}

const int = (n: number) => Math.round(n).toLocaleString("en-US");
const ms = (n: number | null | undefined, digits = 2) => (n === null || n === undefined || Number.isNaN(n) ? "-" : `${n.toFixed(digits)} ms`);
const mb = (n: number | null | undefined) => (n === null || n === undefined ? "-" : `${n.toFixed(1)} MB`);
const pct = (ratio: number) => `${(ratio * 100).toFixed(1)}%`;
const pctRaw = (n: number | null | undefined) => (n === null || n === undefined ? "-" : `${n.toFixed(1)}%`);
