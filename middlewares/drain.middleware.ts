/**
 * On shutdown, drain the gateway before any service stops: clients are told to
 * go and their connections closed while the services behind them still answer,
 * so in-flight calls finish and nothing sees a half-stopped node.
 */
import type { Middleware, ServiceBroker } from "moleculer";

export const drainGatewayFirst = {
	name: "DrainGatewayFirst",
	async stopping(broker: ServiceBroker) {
		const gateway = broker.getLocalService("gateway") as { drain?: () => Promise<void> } | undefined;
		await gateway?.drain?.();
	},
} as unknown as Middleware;
