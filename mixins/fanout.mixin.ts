/** Gives a service a Fanout bound to its broker (see lib/fanout.ts). */
import type { Service, ServiceSchema } from "moleculer";
import { Fanout } from "../lib/fanout";

export function withFanout(fanout: Fanout): Partial<ServiceSchema> {
	return {
		created(this: Service) {
			fanout.attach(this.broker);
		},
	};
}

export { Fanout };
