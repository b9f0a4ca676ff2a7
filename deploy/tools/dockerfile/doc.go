// Package dockerfile holds the offline checks of deploy/Dockerfile: BuildKit's
// own build checks (what `docker build --check` runs), with base images
// resolved by a stub instead of a registry, and the properties the
// deployment depends on (static build, distroless nonroot base, numeric
// user, exec-form entrypoint, exposed ports, no HEALTHCHECK).
package dockerfile
