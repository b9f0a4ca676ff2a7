// Package dockerfile holds the offline checks of deploy/Dockerfile: BuildKit's
// own build checks (what `docker build --check` runs), with base images
// resolved by a stub instead of a registry, and the properties the
// deployment depends on (one stage on the empty base, the prepared root
// copied whole, numeric user, exec-form entrypoint, exposed ports, no
// HEALTHCHECK, no other instruction). The built image itself is checked by
// ../imagecheck.
package dockerfile
