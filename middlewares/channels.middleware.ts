/**
 * Channels (@moleculer/channels) for asynchronous work: durable on NATS JetStream
 * in a cluster, in-process (the Fake adapter, over local events) in the embedded
 * profile. The NATS adapter takes `{nats: {url}}`: a bare URL string is mishandled.
 */
import { Adapters, Middleware as ChannelsMiddleware } from "@moleculer/channels";
import type { Middleware } from "moleculer";

type Channel = { id: string; name: string; group: string };
const { NATS: NatsAdapter, Fake: FakeAdapter } = Adapters as unknown as {
	NATS: new (opts: unknown) => { subscribe(chan: Channel): Promise<void> };
	Fake: new (opts?: unknown) => unknown;
};

/**
 * The stock adapter names a consumer's push subject after the node (`<nodeID>.<service>.<channel>`),
 * so the second node of a group asks JetStream for the same durable consumer with another
 * subject and is refused ("consumer name already in use"). Every member of a group must
 * share one durable consumer and one deliver subject, load-balanced by the queue group.
 */
class SharedConsumerNatsAdapter extends NatsAdapter {
	override subscribe(chan: Channel): Promise<void> {
		chan.id = `${chan.group}.${chan.name}`;
		return super.subscribe(chan);
	}
}

export function durableChannels(natsUrl: string): Middleware {
	// nats.js gives up after 10 reconnects (~20 s); a NATS outage must heal by itself, like the transporter does.
	const adapter = new SharedConsumerNatsAdapter({ nats: { url: natsUrl, connectionOptions: { maxReconnectAttempts: -1, reconnectTimeWait: 1000 } } });
	return ChannelsMiddleware({ adapter } as unknown as Parameters<typeof ChannelsMiddleware>[0]) as unknown as Middleware;
}

/** The embedded profile: one process, so channels are local events (lost with the process, like everything in flight). */
export function inProcessChannels(): Middleware {
	return ChannelsMiddleware({ adapter: new FakeAdapter() } as unknown as Parameters<typeof ChannelsMiddleware>[0]) as unknown as Middleware;
}
