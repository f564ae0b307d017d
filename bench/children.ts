/**
 * Every process the bench starts goes through scripts/lib/processes.ts, so that
 * none outlives it: on normal exit, on an error, on Ctrl-C or on the watchdog,
 * whatever is still running is killed and its temp directory removed.
 */
import { killAllChildren } from "../scripts/lib/processes";

export { ROOT, hasExited, makeTempDir, removeTempDir, spawnNodeScript, stopChild, type NodeScript } from "../scripts/lib/processes";

let installed = false;

/** Installs the exit hooks and a watchdog that ends the whole bench after `budgetMs`. */
export function guardChildren(budgetMs: number): void {
	if (installed) return;
	installed = true;
	process.on("exit", killAllChildren);
	for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
		process.on(signal, () => {
			console.error(`\nbench: ${signal}, stopping children`);
			killAllChildren();
			process.exit(130);
		});
	}
	const watchdog = setTimeout(() => {
		console.error(`bench: exceeded its time budget of ${Math.round(budgetMs / 1000)} s, giving up`);
		killAllChildren();
		process.exit(1);
	}, budgetMs);
	watchdog.unref();
}
