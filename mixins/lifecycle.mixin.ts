/**
 * Opens an engine (store, search index) when the service starts and closes it
 * when the service stops, so services only declare which engines they use.
 */
import type { Service, ServiceSchema } from "moleculer";
import type { EngineLog } from "../lib/store/chat-store";

export interface Openable {
	/** Engines report recoveries through the service's logger. */
	open(log?: EngineLog): Promise<void>;
	close(): Promise<void>;
}

export function opensOnStart(...engines: Openable[]): Partial<ServiceSchema> {
	return {
		async started(this: Service) {
			for (const engine of engines) await engine.open(this.logger);
		},
		async stopped() {
			for (const engine of [...engines].reverse()) await engine.close();
		},
	};
}
