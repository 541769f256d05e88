import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { BlobServiceClient, StorageSharedKeyCredential, generateBlobSASQueryParameters, BlobSASPermissions } from '@azure/storage-blob';
const { BlobStream } = await import('../dist/blob/blob-stream.js');
const { makeAppendTarget, toBlobAddress } = await import('../dist/blob/blob-target.js');
const loc = mkdtempSync('/tmp/azt-');
const child = spawn(process.execPath, ['node_modules/azurite/dist/src/blob/main.js','--blobHost','127.0.0.1','--blobPort','0','--location',loc,'--skipApiVersionCheck','--disableTelemetry','--silent'], {stdio:['ignore','pipe','inherit']});
const port = await new Promise(r => { let out=''; child.stdout.on('data', d => { out+=d; const m=/listens on https?:\/\/[^:]+:(\d+)/.exec(out); if(m) r(Number(m[1])); }); });
const cred = new StorageSharedKeyCredential('devstoreaccount1','Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==');
const svc = new BlobServiceClient(`http://127.0.0.1:${port}/devstoreaccount1`, cred);
await svc.getContainerClient('ccc').createIfNotExists();
for (let round = 0; round < 3; round++) {
const sas = generateBlobSASQueryParameters({containerName:'ccc', blobName:'b'+round, permissions: BlobSASPermissions.parse('racw'), expiresOn: new Date(Date.now()+3600e3)}, cred).toString();
const target = makeAppendTarget(toBlobAddress({ uri: `http://127.0.0.1:${port}/devstoreaccount1/ccc/b${round}?${sas}` }), { tokens: null, onToken: () => {} });
await target.reset(AbortSignal.timeout(5000));
const s = new BlobStream({ file: '/tmp/scratch/big', target, intervalMs: 5000 });
const t = Date.now();
s.start(0, false);
const r = await s.finish(60000);
console.log(r, Date.now() - t, 'ms', 'rss', process.memoryUsage().rss/1048576|0, 'MB');
}
child.kill('SIGTERM');
