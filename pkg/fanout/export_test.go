package fanout

// TopicSleepers returns how many subscribers are asleep on the named topic
// ("" for subscribers to every topic), for black-box tests.
func (r *Ring) TopicSleepers(name string) int {
	t := r.root
	if name != "" {
		if t = r.topics.get(name); t == nil {
			return 0
		}
	}
	return int(t.sleeping.Load())
}
