// A module resolve hook: the one import Kinde's runtime provides is answered by the local stub.
const STUB = new URL("./kinde-infrastructure-stub.mjs", import.meta.url).href;

export async function resolve(specifier, context, nextResolve) {
  if (specifier === "@kinde/infrastructure") {
    return { url: STUB, shortCircuit: true };
  }
  return nextResolve(specifier, context);
}
