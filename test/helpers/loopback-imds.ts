// A loopback stand-in for the instance metadata service's managed-identity token endpoint
// (http://169.254.169.254/metadata/identity/oauth2/token): it hands out unsigned JWTs that
// Azurite accepts in `--oauth basic` mode, and records what was asked.
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TokenRequest {
  readonly resource: string | null;
  readonly clientId: string | null;
  readonly objectId: string | null;
  readonly metadataHeader: string | undefined;
}

export interface LoopbackImds {
  // The endpoint for RUNCOMMAND_HANDLER_IMDS_ENDPOINT.
  readonly endpoint: string;
  readonly requests: TokenRequest[];
  // Every token handed out (canaries: they must appear in no file).
  readonly tokens: string[];
  close(): Promise<void>;
}

const toBase64Url = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');

// A storage token Azurite's basic OAuth check accepts: audience, issuer and lifetime only.
export function makeStorageToken(lifetimeS = 3600): string {
  const now = Math.floor(Date.now() / 1000);
  const claims = { aud: 'https://storage.azure.com', iss: `https://sts.windows.net/${randomUUID()}/`, iat: now - 60, nbf: now - 60, exp: now + lifetimeS, oid: randomUUID(), jti: randomUUID() };
  return `${toBase64Url({ alg: 'RS256', typ: 'JWT' })}.${toBase64Url(claims)}.${Buffer.from(randomUUID()).toString('base64url')}`;
}

// Starts the token endpoint on a free loopback port.
export async function startLoopbackImds(): Promise<LoopbackImds> {
  const requests: TokenRequest[] = [];
  const tokens: string[] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://imds');
    const metadata = req.headers['metadata'];
    requests.push({ resource: url.searchParams.get('resource'), clientId: url.searchParams.get('client_id'), objectId: url.searchParams.get('object_id'), metadataHeader: Array.isArray(metadata) ? metadata[0] : metadata });
    if (url.pathname !== '/metadata/identity/oauth2/token' || metadata !== 'true') {
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"invalid_request"}');
      return;
    }
    const token = makeStorageToken();
    tokens.push(token);
    const expiresOn = Math.floor(Date.now() / 1000) + 3600;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ access_token: token, expires_in: '3600', expires_on: String(expiresOn), resource: url.searchParams.get('resource'), token_type: 'Bearer' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    tokens,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
