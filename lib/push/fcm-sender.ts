/**
 * Sends push notifications through Firebase Cloud Messaging with firebase-admin.
 * Each message is an FCM v1 `messages:send` over HTTP/1.1 with the app's own
 * agent, so an operator can route Google's endpoints through an egress relay
 * (and tests through a local FCM stand-in) without touching the SDK.
 */
import fs from "node:fs";
import https from "node:https";
import type { Duplex } from "node:stream";
import tls from "node:tls";
import { cert, deleteApp, initializeApp, type App } from "firebase-admin/app";
import { getMessaging, type Message as FcmMessage, type Messaging } from "firebase-admin/messaging";

/** sent; gone: the token is dead, forget it; refused: this message can never be sent; retry: try again later. */
export type SendOutcome = "sent" | "gone" | "refused" | "retry";

export interface PushSender {
	send(messages: FcmMessage[]): Promise<SendOutcome[]>;
	close(): Promise<void>;
}

export interface FcmOptions {
	/** A service account key as Google issues it (project_id, client_email, private_key). */
	serviceAccountFile: string;
	/** Send every request for Google's hosts to this https://host:port instead (TLS still names the real host). */
	relayUrl?: string;
	/** Extra CA certificate (PEM) to trust, for a relay with its own certificate. */
	caFile?: string;
}

const GONE = new Set(["messaging/registration-token-not-registered", "messaging/invalid-registration-token"]);
const REFUSED = new Set(["messaging/invalid-argument", "messaging/invalid-payload", "messaging/mismatched-credential", "messaging/sender-id-mismatch", "messaging/third-party-auth-error"]);

export function outcomeOf(err: unknown): SendOutcome {
	const code = (err as { code?: unknown })?.code;
	if (typeof code === "string" && GONE.has(code)) return "gone";
	if (typeof code === "string" && REFUSED.has(code)) return "refused";
	return "retry";
}

/** An agent that connects to the relay whatever host a request names, keeping that name for TLS. */
class RelayAgent extends https.Agent {
	constructor(
		private readonly relay: URL,
		ca: Buffer | undefined,
	) {
		super({ keepAlive: true, ...(ca ? { ca: [...tls.rootCertificates, ca.toString("utf8")] } : {}) });
	}

	// Returning the socket is enough: the agent only waits for a callback when nothing is returned.
	override createConnection(options: tls.ConnectionOptions & { host?: string }): Duplex {
		const servername = options.servername || options.host;
		return tls.connect({ ...options, host: this.relay.hostname, port: Number(this.relay.port || 443), servername });
	}
}

let apps = 0;

export class FcmSender implements PushSender {
	private readonly app: App;
	private readonly messaging: Messaging;

	constructor(options: FcmOptions) {
		const account = JSON.parse(fs.readFileSync(options.serviceAccountFile, "utf8")) as { project_id?: string };
		const agent = options.relayUrl ? new RelayAgent(new URL(options.relayUrl), options.caFile ? fs.readFileSync(options.caFile) : undefined) : undefined;
		this.app = initializeApp({ credential: cert(options.serviceAccountFile, agent), httpAgent: agent, projectId: account.project_id }, `parley-push-${++apps}`);
		this.messaging = getMessaging(this.app);
	}

	send(messages: FcmMessage[]): Promise<SendOutcome[]> {
		return Promise.all(messages.map((m) => this.messaging.send(m).then((): SendOutcome => "sent", outcomeOf)));
	}

	close(): Promise<void> {
		return deleteApp(this.app);
	}
}
