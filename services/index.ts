/**
 * Every service of Parley, by role, in start order. The embedded profile runs
 * every role in one process; a cluster node runs the roles in PARLEY_ROLES.
 */
import type { ServiceSchema } from "moleculer";
import type { Config, Role } from "../config";
import conversationsService from "./conversations.service";
import gatewayService from "./gateway.service";
import messagesService from "./messages.service";
import presenceService from "./presence.service";
import pushService from "./push.service";
import receiptsService from "./receipts.service";
import searchService from "./search.service";
import typingService from "./typing.service";

type Factory = (config: Config) => ServiceSchema;

/**
 * Core services own the store and order conversations. Presence and typing sit with the
 * gateway: they are stateless over Redis or short-lived, and a session's typing timers
 * belong on the node that sees its socket close.
 */
export const SERVICES_BY_ROLE: Record<Role, Record<string, Factory>> = {
	core: {
		conversations: conversationsService,
		messages: messagesService,
		receipts: receiptsService,
		search: searchService,
		push: pushService,
	},
	gateway: {
		presence: presenceService,
		typing: typingService,
		gateway: gatewayService,
	},
};

export function servicesFor(config: Config): ServiceSchema[] {
	const order: Role[] = ["core", "gateway"];
	return order.filter((role) => config.roles.includes(role)).flatMap((role) => Object.values(SERVICES_BY_ROLE[role]).map((factory) => factory(config)));
}
