/**
 * Runs a task every `ms` while the service is up. Runs never overlap (a slow
 * run delays the next), and a failed run is logged, not fatal: the next one retries.
 */
import type { Service, ServiceSchema } from "moleculer";

export function runsEvery(ms: number, task: () => Promise<void>): Partial<ServiceSchema> {
	let timer: NodeJS.Timeout | undefined;
	let stopped = false;
	return {
		started(this: Service) {
			stopped = false;
			const loop = () => {
				timer = setTimeout(() => {
					task()
						.catch((err: Error) => this.logger.warn(`periodic task failed: ${err.message}`))
						.finally(() => {
							if (!stopped) loop();
						});
				}, ms);
				timer.unref();
			};
			loop();
		},
		stopped() {
			stopped = true;
			clearTimeout(timer);
		},
	};
}
