// `node --import ./test/register.mjs`: resolve @kinde/infrastructure to the stub beside this file, so the
// workflow's tests need no npm install (and never reach the network).
import { register } from "node:module";

register("./resolve-stub.mjs", import.meta.url);
