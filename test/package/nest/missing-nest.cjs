// Run in a project without NestJS: importing courier-bus/nest must fail with one clear error.
'use strict';
const out = {};
const describe = (err) => ({ name: err.name, code: err.code, packageName: err.packageName, message: err.message });
try {
  require('courier-bus/nest');
  out.require = 'loaded';
} catch (err) {
  out.require = describe(err);
}
import('courier-bus/nest').then(
  () => (out.import = 'loaded'),
  (err) => (out.import = describe(err)),
).then(() => console.log(JSON.stringify(out)));
