// Package deploy holds no code: its tests check the deployment files beside them
// (docker-compose.yml, the Dockerfiles, Traefik, Prometheus rules, Grafana dashboards)
// against each other and against the metrics the Go code registers.
package deploy
