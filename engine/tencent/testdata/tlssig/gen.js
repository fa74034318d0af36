// Prints one UserSig per line, made by Tencent's tls-sig-api-v2, for each
// "sdkappid key identifier expire" line on stdin.
const TLSSigAPIv2 = require('tls-sig-api-v2');
const lines = require('fs').readFileSync(0, 'utf8').split('\n').filter((l) => l.trim() !== '');
for (const line of lines) {
  const [sdkappid, key, identifier, expire] = line.trim().split(/\s+/);
  const api = new TLSSigAPIv2.Api(Number(sdkappid), key);
  console.log(api.genUserSig(identifier, Number(expire)));
}
