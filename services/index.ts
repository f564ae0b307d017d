/** Every service of Parley, in start order. The embedded profile runs them all in one process. */
import type { ServiceSchema } from "moleculer";
import type { Config } from "../config";
import conversationsService from "./conversations.service";
import gatewayService from "./gateway.service";
import messagesService from "./messages.service";
import presenceService from "./presence.service";
import receiptsService from "./receipts.service";
import searchService from "./search.service";
import typingService from "./typing.service";

export const SERVICE_FACTORIES: Record<string, (config: Config) => ServiceSchema> = {
	conversations: conversationsService,
	messages: messagesService,
	receipts: receiptsService,
	search: searchService,
	presence: presenceService,
	typing: typingService,
	gateway: gatewayService,
};

export function servicesFor(config: Config): ServiceSchema[] {
	return Object.values(SERVICE_FACTORIES).map((factory) => factory(config));
}
