package postgres

import (
	"fmt"

	"github.com/jackc/pgx/v5"
)

func pgconnConfig(url string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// pgx errors quote the connection string; keep credentials out of logs.
		return nil, fmt.Errorf("invalid connection string")
	}
	return cfg, nil
}
