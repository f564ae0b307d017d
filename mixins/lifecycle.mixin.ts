/**
 * Opens an engine (store, search index) when the service starts and closes it
 * when the service stops, so services only declare which engines they use.
 */
import type { ServiceSchema } from "moleculer";

export interface Openable {
	open(): Promise<void>;
	close(): Promise<void>;
}

export function opensOnStart(...engines: Openable[]): Partial<ServiceSchema> {
	return {
		async started() {
			for (const engine of engines) await engine.open();
		},
		async stopped() {
			for (const engine of [...engines].reverse()) await engine.close();
		},
	};
}
