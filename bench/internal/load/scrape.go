package load

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// scraper reads the server's /metrics every interval during the measured
// phase, as a Prometheus server would: to measure what being scraped costs
// the server (compare a run with scraping and one without).
type scraper struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	stats  ScrapeStats
}

// ScrapeStats says what the scraper did.
type ScrapeStats struct {
	IntervalSec float64 `json:"interval_s"`
	Scrapes     int     `json:"scrapes"`
	Errors      int     `json:"errors"`
	MeanMs      float64 `json:"mean_ms"` // mean time of a scrape
	Bytes       int64   `json:"bytes"`   // of the last scrape
}

// startScraper scrapes baseURL+"/metrics" every interval until stop.
func startScraper(baseURL string, interval time.Duration) *scraper {
	ctx, cancel := context.WithCancel(context.Background())
	s := &scraper{cancel: cancel, done: make(chan struct{})}
	s.stats.IntervalSec = interval.Seconds()
	url := strings.TrimSuffix(baseURL, "/") + "/metrics"
	client := &http.Client{Timeout: interval}
	go func() {
		defer close(s.done)
		defer client.CloseIdleConnections()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		var total time.Duration
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			begin := time.Now()
			n, err := scrapeOnce(ctx, client, url)
			s.mu.Lock()
			if err != nil {
				s.stats.Errors++
			} else {
				s.stats.Scrapes++
				s.stats.Bytes = n
				total += time.Since(begin)
				s.stats.MeanMs = float64(total.Microseconds()) / 1000 / float64(s.stats.Scrapes)
			}
			s.mu.Unlock()
		}
	}()
	return s
}

func scrapeOnce(ctx context.Context, client *http.Client, url string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// stop ends the scraping and returns what it did.
func (s *scraper) stop() ScrapeStats {
	s.cancel()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}
