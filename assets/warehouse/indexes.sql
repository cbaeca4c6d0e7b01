-- Created after bulk load (cheaper than maintaining them during the load).
CREATE INDEX ix_users_inst ON users (institution_id, id);
CREATE INDEX ix_story_views_inst_time ON story_views (institution_id, viewed_at);
CREATE INDEX ix_reactions_inst_time ON storyboard_reactions (institution_id, reacted_at);
CREATE INDEX ix_course_views_inst_time ON course_views (institution_id, viewed_at);
CREATE INDEX ix_enrollments_inst_time ON enrollments (institution_id, enrolled_at);
CREATE INDEX ix_enrollments_inst_completed ON enrollments (institution_id, completed_at);
CREATE INDEX ix_library_inst_created ON library_contents (institution_id, created_at);
CREATE INDEX ix_questions_inst_time ON questions (institution_id, created_at);
CREATE INDEX ix_bookings_inst_time ON bookings (institution_id, scheduled_for);
CREATE INDEX ix_nps_inst_time ON nps_answers (institution_id, answered_at);
