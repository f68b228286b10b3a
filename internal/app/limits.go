package app

import (
	"log/slog"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/fdlimit"
)

// applyDescriptorLimit raises the process's descriptor limit to its maximum
// and sizes the listener limit to what the process can hold: "auto" takes
// the whole budget, a number is capped to it. It logs the effective values.
func (st *settings) applyDescriptorLimit(log *slog.Logger) {
	lim, err := fdlimit.Raise()
	if err != nil {
		log.Warn("could not raise the descriptor limit", "error", err, "soft", lim.Soft, "hard", lim.Hard)
	}
	soft, hard := lim.Soft, lim.Hard
	budget := fdlimit.Budget(soft)
	c := &st.server
	switch {
	case budget <= 0:
		// Unknown limit: keep what was asked, or the default.
	case st.maxListeners == "auto" || c.MaxListeners > budget:
		if st.maxListeners != "auto" {
			log.Warn("max-listeners is above what the descriptor limit allows; capped",
				"asked", c.MaxListeners, "capped_to", budget, "descriptor_limit", soft)
		}
		c.MaxListeners = budget
	}
	log.Info("descriptor limit", "soft", soft, "hard", hard, "max_listeners", c.MaxListeners)
}
