/**
 * A local stand-in for Google's side of push: the OAuth2 token endpoint and the
 * FCM HTTP v1 `messages:send` endpoint, over HTTPS with a certificate for
 * Google's host names signed by a throwaway CA. firebase-admin talks to it for
 * real: the server is pointed at it with PARLEY_FCM_RELAY_URL and trusts the CA
 * through PARLEY_FCM_CA_FILE, and signs its token requests with the service
 * account key made here, which the stand-in verifies.
 */
import { execFileSync } from "node:child_process";
import { createVerify, generateKeyPairSync, randomBytes } from "node:crypto";
import fs from "node:fs";
import https from "node:https";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";

export interface FcmSend {
	/** The FCM v1 message as the server sent it. */
	message: { token: string; notification?: { title?: string; body?: string }; data?: Record<string, string>; [key: string]: unknown };
	at: number;
}

export interface FcmStandIn {
	/** Environment for a Parley server that should push through this stand-in. */
	env: Record<string, string>;
	sends: FcmSend[];
	/** Every send request that reached the stand-in, by token, with the HTTP status it got. */
	attempts: { token: string; status: number }[];
	/** Tokens FCM answers as UNREGISTERED (an app uninstalled). */
	goneTokens: Set<string>;
	/** The next `n` sends fail with 503 UNAVAILABLE. */
	failNext(n: number): void;
	tokenRequests(): number;
	waitFor(predicate: (sends: FcmSend[]) => boolean, timeoutMs?: number): Promise<void>;
	close(): Promise<void>;
}

const PROJECT = "parley-test";
const HOSTS = ["fcm.googleapis.com", "oauth2.googleapis.com", "www.googleapis.com", "accounts.google.com"];

function makeCertificates(dir: string): { key: Buffer; cert: Buffer; caFile: string } {
	const run = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
	run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Parley FCM stand-in CA");
	run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=fcm.googleapis.com");
	fs.writeFileSync(path.join(dir, "ext.cnf"), `subjectAltName=${[...HOSTS.map((h) => `DNS:${h}`), "IP:127.0.0.1"].join(",")}\n`);
	run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf");
	return { key: fs.readFileSync(path.join(dir, "server.key")), cert: fs.readFileSync(path.join(dir, "server.pem")), caFile: path.join(dir, "ca.pem") };
}

/** Checks an RS256 JWT bearer assertion against the service account's public key; returns its claims. */
function verifyAssertion(assertion: string, publicKey: string): Record<string, unknown> | null {
	const [header, claims, signature] = assertion.split(".");
	if (!header || !claims || !signature) return null;
	if ((JSON.parse(Buffer.from(header, "base64url").toString()) as { alg?: string }).alg !== "RS256") return null;
	const ok = createVerify("RSA-SHA256").update(`${header}.${claims}`).verify(publicKey, Buffer.from(signature, "base64url"));
	return ok ? (JSON.parse(Buffer.from(claims, "base64url").toString()) as Record<string, unknown>) : null;
}

const readBody = (req: import("node:http").IncomingMessage) =>
	new Promise<string>((resolve, reject) => {
		const chunks: Buffer[] = [];
		req.on("data", (c: Buffer) => chunks.push(c));
		req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
		req.on("error", reject);
	});

function fcmError(status: number, statusText: string, message: string, errorCode?: string) {
	const details = errorCode ? [{ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", errorCode }] : [];
	return JSON.stringify({ error: { code: status, message, status: statusText, details } });
}

export async function startFcmStandIn(): Promise<FcmStandIn> {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), "parley-fcm-"));
	const { key, cert, caFile } = makeCertificates(dir);
	const account = generateKeyPairSync("rsa", { modulusLength: 2048, publicKeyEncoding: { type: "spki", format: "pem" }, privateKeyEncoding: { type: "pkcs8", format: "pem" } });
	const clientEmail = `parley@${PROJECT}.iam.gserviceaccount.com`;
	const serviceAccountFile = path.join(dir, "service-account.json");
	fs.writeFileSync(serviceAccountFile, JSON.stringify({ type: "service_account", project_id: PROJECT, client_email: clientEmail, private_key: account.privateKey, private_key_id: "test" }));

	const accessTokens = new Set<string>();
	const sends: FcmSend[] = [];
	const attempts: { token: string; status: number }[] = [];
	const goneTokens = new Set<string>();
	let failures = 0;
	let tokenRequests = 0;

	const server = https.createServer({ key, cert }, async (req, res) => {
		const body = await readBody(req);
		const reply = (status: number, json: string) => {
			res.writeHead(status, { "content-type": "application/json; charset=UTF-8" });
			res.end(json);
		};
		const url = new URL(req.url ?? "/", `https://${req.headers.host}`);
		if (req.method === "POST" && url.pathname.endsWith("/token")) {
			tokenRequests++;
			const form = new URLSearchParams(body);
			const claims = form.get("grant_type") === "urn:ietf:params:oauth:grant-type:jwt-bearer" ? verifyAssertion(form.get("assertion") ?? "", account.publicKey) : null;
			if (!claims || claims.iss !== clientEmail || !String(claims.scope ?? "").includes("firebase.messaging")) {
				return reply(400, JSON.stringify({ error: "invalid_grant", error_description: "Invalid JWT Signature." }));
			}
			const token = `ya29.${randomBytes(24).toString("base64url")}`;
			accessTokens.add(token);
			return reply(200, JSON.stringify({ access_token: token, expires_in: 3599, token_type: "Bearer" }));
		}
		const send = /^\/v1\/projects\/([^/]+)\/messages:send$/.exec(url.pathname);
		if (req.method === "POST" && send) {
			const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
			if (!bearer || !accessTokens.has(bearer)) return reply(401, fcmError(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."));
			if (send[1] !== PROJECT) return reply(403, fcmError(403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH"));
			const { message } = JSON.parse(body) as { message: FcmSend["message"] };
			const status = failures > 0 ? 503 : !message?.token ? 400 : goneTokens.has(message.token) ? 404 : 200;
			attempts.push({ token: message?.token ?? "", status });
			if (failures > 0) {
				failures--;
				return reply(503, fcmError(503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE"));
			}
			if (!message?.token) return reply(400, fcmError(400, "INVALID_ARGUMENT", "Recipient of the message is not set.", "INVALID_ARGUMENT"));
			if (goneTokens.has(message.token)) return reply(404, fcmError(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED"));
			sends.push({ message, at: Date.now() });
			return reply(200, JSON.stringify({ name: `projects/${PROJECT}/messages/${sends.length}` }));
		}
		reply(404, fcmError(404, "NOT_FOUND", "Not found"));
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const { port } = server.address() as AddressInfo;

	return {
		env: { PARLEY_FCM_SERVICE_ACCOUNT: serviceAccountFile, PARLEY_FCM_RELAY_URL: `https://127.0.0.1:${port}`, PARLEY_FCM_CA_FILE: caFile },
		sends,
		attempts,
		goneTokens,
		failNext: (n) => (failures = n),
		tokenRequests: () => tokenRequests,
		async waitFor(predicate, timeoutMs = 10_000) {
			const deadline = Date.now() + timeoutMs;
			while (!predicate(sends)) {
				if (Date.now() > deadline) throw new Error(`FCM stand-in: expected sends did not arrive; got ${JSON.stringify(sends.map((s) => s.message.data))}`);
				await new Promise((r) => setTimeout(r, 20));
			}
		},
		async close() {
			server.closeAllConnections();
			await new Promise<void>((resolve) => server.close(() => resolve()));
			fs.rmSync(dir, { recursive: true, force: true });
		},
	};
}
