/**
 * `npm run bench`: measures Parley against design.md §6 (T1 throughput, T2
 * latency, T8 start-up) on this machine, over loopback. The server, the load
 * generator and (with --baseline) a bare Socket.IO relay each run in their own
 * process; this one only orchestrates, samples /proc and reports.
 * Results are printed and written to .bench/last.json. See BENCHMARKS.md.
 */
import fs from "node:fs";
import path from "node:path";
import { ROOT, guardChildren } from "./children";
import { runLoad, type LoadRun } from "./load-run";
import { describeMachine, describeRevision } from "./machine";
import { machineBusyPctOver, waitUntilQuiet } from "./proc-stats";
import { USAGE, UsageError, parseOptions, type BenchOptions } from "./options";
import { printReport, verdictsOf, type BenchReport } from "./report";
import { measureStartup } from "./startup";
import type { TargetName } from "./targets";

/** Generous upper bound on the whole run; the watchdog ends the bench (and its children) past it. */
function timeBudgetMs(options: BenchOptions): number {
	const perLoadRunS = 10 + 30 + 60 + options.warmupS + options.durationS + options.drainS + 60;
	const perTarget = (options.scenarios.includes("throughput") ? options.windows.length : 0) + (options.scenarios.includes("latency") ? 1 : 0);
	const loadRuns = perTarget * (options.baseline ? 2 : 1);
	const startupS = options.scenarios.includes("startup") ? options.startupRuns * 40 : 0;
	return (startupS + loadRuns * perLoadRunS + 30) * 1000;
}

async function main(): Promise<void> {
	const argv = process.argv.slice(2);
	let options: BenchOptions;
	try {
		options = parseOptions(argv);
	} catch (err) {
		if (!(err instanceof UsageError)) throw err;
		if (err.message) console.error(`bench: ${err.message}\n`);
		console.error(USAGE);
		process.exit(err.message ? 2 : 0);
	}
	guardChildren(timeBudgetMs(options));

	const targets: TargetName[] = options.baseline ? ["parley", "relay"] : ["parley"];
	const partial: Omit<BenchReport, "verdicts"> = {
		command: `npm run bench${argv.length ? ` -- ${argv.join(" ")}` : ""}`,
		date: new Date().toISOString(),
		revision: describeRevision(),
		machine: describeMachine(),
		options,
		startup: null,
		runs: [],
	};

	partial.machine.busyBeforePct = await machineBusyPctOver(1000);
	if (partial.machine.busyBeforePct > 20) {
		console.error(`bench: WARNING: ${partial.machine.busyBeforePct}% of the machine was busy before the bench started; figures will be low and noisy`);
	}
	if (options.scenarios.includes("startup") && options.profile !== "cluster") {
		progress(`startup: ${options.startupRuns} run(s)`);
		partial.startup = await measureStartup(options.profile, options.startupRuns);
	}
	const plan: { scenario: "throughput" | "latency"; window: number }[] = [
		...(options.scenarios.includes("throughput") ? options.windows.map((window) => ({ scenario: "throughput" as const, window })) : []),
		...(options.scenarios.includes("latency") ? [{ scenario: "latency" as const, window: 0 }] : []),
	];
	for (const { scenario, window } of plan) {
		for (const target of targets) {
			const busy = await waitUntilQuiet(10_000);
			const step = scenario === "throughput" ? `throughput: ${target}, window ${window}` : `latency: ${target}, ${options.rate} msg/s`;
			progress(`${step}${busy > 10 ? ` (machine still ${busy}% busy after waiting 10 s)` : ""}`);
			const run = await runLoad(target, scenario, options, window).catch(
				(err: Error): LoadRun => ({ target, scenario, window, rate: options.rate, result: null, error: err.message, server: null }),
			);
			partial.runs.push(run);
		}
	}

	const report: BenchReport = { ...partial, verdicts: verdictsOf(partial) };
	printReport(report);
	const out = path.join(ROOT, ".bench", "last.json");
	fs.mkdirSync(path.dirname(out), { recursive: true });
	fs.writeFileSync(out, JSON.stringify(report, null, 2) + "\n");
	console.log(`\nwritten to ${path.relative(ROOT, out)}`);
	const failedRuns = report.runs.some((r) => r.error || r.server?.died);
	process.exit(failedRuns ? 1 : 0);
}

const startedAt = performance.now();
function progress(step: string): void {
	console.error(`[bench +${((performance.now() - startedAt) / 1000).toFixed(1)} s] ${step}`);
}

main().catch((err: Error) => {
	console.error("bench failed:", err.stack ?? err.message);
	process.exit(1);
});
