-- Warehouse contract: one schema for DuckDB and PostgreSQL (portable SQL only).
-- All timestamps are TIMESTAMP WITHOUT TIME ZONE holding UTC instants; reports
-- convert to the institution's timezone in Polars. Event tables carry
-- institution_id and are loaded sorted by (institution_id, <time>) and indexed
-- on it, so extraction for one institution and one period stays cheap at any
-- warehouse size.

-- ---------------------------------------------------------------- core
CREATE TABLE institutions (
    id          BIGINT PRIMARY KEY,
    name        VARCHAR NOT NULL,
    subdomain   VARCHAR NOT NULL,
    timezone    VARCHAR NOT NULL DEFAULT 'America/Sao_Paulo'
);

-- privilege_id: 1 owner, 2 admin, 3 teacher/tutor, 4 student
CREATE TABLE users (
    id              BIGINT PRIMARY KEY,
    institution_id  BIGINT NOT NULL,
    uuid            VARCHAR NOT NULL,
    external_id     VARCHAR,
    first_name      VARCHAR NOT NULL,
    last_name       VARCHAR NOT NULL,
    name            VARCHAR NOT NULL,
    email           VARCHAR NOT NULL,
    cpf             VARCHAR,
    cnpj            VARCHAR,
    privilege_id    INTEGER NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    blocked_at      TIMESTAMP,
    deleted_at      TIMESTAMP
);

-- ---------------------------------------------------------------- storyboards (seed 000)
CREATE TABLE storyboards (
    id              BIGINT PRIMARY KEY,
    institution_id  BIGINT NOT NULL,
    title           VARCHAR NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    deleted_at      TIMESTAMP
);

CREATE TABLE stories (
    id              BIGINT PRIMARY KEY,
    institution_id  BIGINT NOT NULL,
    storyboard_id   BIGINT NOT NULL,
    position        INTEGER NOT NULL
);

CREATE TABLE story_views (
    institution_id  BIGINT NOT NULL,
    user_id         BIGINT NOT NULL,
    storyboard_id   BIGINT NOT NULL,
    story_id        BIGINT NOT NULL,
    viewed_at       TIMESTAMP NOT NULL
);

-- kind: 'like' | 'dislike'
CREATE TABLE storyboard_reactions (
    institution_id  BIGINT NOT NULL,
    user_id         BIGINT NOT NULL,
    storyboard_id   BIGINT NOT NULL,
    kind            VARCHAR NOT NULL,
    reacted_at      TIMESTAMP NOT NULL
);

-- ---------------------------------------------------------------- courses (seed 001)
CREATE TABLE schools (
    id              BIGINT PRIMARY KEY,
    institution_id  BIGINT NOT NULL,
    name            VARCHAR NOT NULL
);

-- status: 1 published, 0 draft
CREATE TABLE courses (
    id              BIGINT PRIMARY KEY,
    institution_id  BIGINT NOT NULL,
    title           VARCHAR NOT NULL,
    status          INTEGER NOT NULL,
    published_at    TIMESTAMP,
    created_at      TIMESTAMP NOT NULL
);

CREATE TABLE course_schools (
    institution_id  BIGINT NOT NULL,
    course_id       BIGINT NOT NULL,
    school_id       BIGINT NOT NULL
);

CREATE TABLE course_views (
    institution_id  BIGINT NOT NULL,
    course_id       BIGINT NOT NULL,
    user_id         BIGINT NOT NULL,
    viewed_at       TIMESTAMP NOT NULL
);

CREATE TABLE enrollments (
    institution_id  BIGINT NOT NULL,
    course_id       BIGINT NOT NULL,
    user_id         BIGINT NOT NULL,
    enrolled_at     TIMESTAMP NOT NULL,
    completed_at    TIMESTAMP
);

-- ---------------------------------------------------------------- library (seed 003)
-- type: 'text' | 'video_online' | 'html5'; status: 0 draft, 1 published
CREATE TABLE library_contents (
    id                              BIGINT PRIMARY KEY,
    institution_id                  BIGINT NOT NULL,
    user_id                         BIGINT NOT NULL,
    title                           VARCHAR NOT NULL,
    description                     VARCHAR,
    type                            VARCHAR NOT NULL,
    monolith_type                   INTEGER NOT NULL,
    status                          INTEGER NOT NULL,
    body                            VARCHAR,
    file_url                        VARCHAR,
    video_url                       VARCHAR,
    duration                        INTEGER NOT NULL DEFAULT 0,
    thumbnail_url                   VARCHAR,
    catalog_cover_rectangular_url   VARCHAR,
    difficulty                      VARCHAR,
    tags                            VARCHAR,
    source                          VARCHAR,
    authors                         VARCHAR,
    disable_player_controls         BOOLEAN NOT NULL DEFAULT FALSE,
    show_in_student_catalog         BOOLEAN NOT NULL DEFAULT FALSE,
    show_in_visitor_catalog         BOOLEAN NOT NULL DEFAULT FALSE,
    block_catalog_logged_out        BOOLEAN NOT NULL DEFAULT FALSE,
    show_course_details             BOOLEAN NOT NULL DEFAULT FALSE,
    show_in_related_videos          BOOLEAN NOT NULL DEFAULT FALSE,
    video_orientation               VARCHAR,
    created_at                      TIMESTAMP NOT NULL,
    updated_at                      TIMESTAMP NOT NULL,
    deleted_at                      TIMESTAMP
);

-- link_type: 'cycle' | 'cycle_stage' | 'discipline' | 'school'
CREATE TABLE library_content_links (
    institution_id  BIGINT NOT NULL,
    content_id      BIGINT NOT NULL,
    link_type       VARCHAR NOT NULL,
    ref_id          BIGINT NOT NULL
);

-- ---------------------------------------------------------------- Stift-style (seed 002)
CREATE TABLE groups (
    id              VARCHAR PRIMARY KEY,
    institution_id  BIGINT NOT NULL,
    school_id       BIGINT NOT NULL,
    name            VARCHAR NOT NULL
);

-- role: 'student' | 'teacher' | 'admin'
CREATE TABLE group_members (
    institution_id  BIGINT NOT NULL,
    group_id        VARCHAR NOT NULL,
    user_id         BIGINT NOT NULL,
    role            VARCHAR NOT NULL,
    joined_at       TIMESTAMP NOT NULL
);

CREATE TABLE disciplines (
    id              BIGINT PRIMARY KEY,
    institution_id  BIGINT NOT NULL,
    name            VARCHAR NOT NULL
);

CREATE TABLE subjects (
    id              BIGINT PRIMARY KEY,
    institution_id  BIGINT NOT NULL,
    discipline_id   BIGINT NOT NULL,
    name            VARCHAR NOT NULL
);

-- teacher_disciplines: which disciplines a teacher answers/teaches
CREATE TABLE teacher_disciplines (
    institution_id  BIGINT NOT NULL,
    teacher_id      BIGINT NOT NULL,
    discipline_id   BIGINT NOT NULL
);

-- A question, its (first) answer, the student's reply and the teacher's answer
-- to the reply, and the student's rating of the answer. closed_at set when the
-- question was closed/cancelled without an answer.
CREATE TABLE questions (
    id                          VARCHAR PRIMARY KEY,
    institution_id              BIGINT NOT NULL,
    group_id                    VARCHAR NOT NULL,
    student_id                  BIGINT NOT NULL,
    teacher_id                  BIGINT,
    discipline_id               BIGINT,
    subject_id                  BIGINT,
    description                 VARCHAR NOT NULL,
    anonymous                   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at                  TIMESTAMP NOT NULL,
    assigned_at                 TIMESTAMP,
    answered_at                 TIMESTAMP,
    closed_at                   TIMESTAMP,
    answer_description          VARCHAR,
    reply_description           VARCHAR,
    reply_answer_description    VARCHAR,
    answer_rating               DOUBLE PRECISION,
    answer_understood           BOOLEAN,
    answer_comment              VARCHAR,
    has_seen_answer             BOOLEAN NOT NULL DEFAULT FALSE
);

-- Teacher's weekly booking availability: weekday 0=Monday..6=Sunday, minutes from local midnight.
CREATE TABLE teacher_schedules (
    id              BIGINT PRIMARY KEY,
    institution_id  BIGINT NOT NULL,
    school_id       BIGINT NOT NULL,
    teacher_id      BIGINT NOT NULL,
    discipline_id   BIGINT NOT NULL,
    weekday         INTEGER NOT NULL,
    start_minute    INTEGER NOT NULL,
    end_minute      INTEGER NOT NULL
);

-- modal: 'Online' | 'Presencial'
CREATE TABLE booking_rooms (
    id              BIGINT PRIMARY KEY,
    institution_id  BIGINT NOT NULL,
    school_id       BIGINT NOT NULL,
    name            VARCHAR NOT NULL,
    modal           VARCHAR NOT NULL
);

-- cancelled_by_role: 'student' | 'teacher' | 'admin'; is_queue marks a queue
-- booking (student waits for any free teacher).
CREATE TABLE bookings (
    id                              VARCHAR PRIMARY KEY,
    institution_id                  BIGINT NOT NULL,
    school_id                       BIGINT NOT NULL,
    group_id                        VARCHAR,
    student_id                      BIGINT NOT NULL,
    teacher_id                      BIGINT,
    discipline_id                   BIGINT,
    booking_room_id                 BIGINT,
    is_queue                        BOOLEAN NOT NULL DEFAULT FALSE,
    created_at                      TIMESTAMP NOT NULL,
    scheduled_for                   TIMESTAMP NOT NULL,
    meeting_started_at              TIMESTAMP,
    meeting_ended_at                TIMESTAMP,
    cancelled_at                    TIMESTAMP,
    cancelled_by_id                 BIGINT,
    cancelled_by_role               VARCHAR,
    queue_joined_at                 TIMESTAMP,
    queue_left_at                   TIMESTAMP,
    rating_by_student               DOUBLE PRECISION,
    rating_by_teacher               DOUBLE PRECISION,
    call_quality_rating_by_student  DOUBLE PRECISION,
    call_quality_rating_by_teacher  DOUBLE PRECISION
);

CREATE TABLE nps_answers (
    id              BIGINT PRIMARY KEY,
    institution_id  BIGINT NOT NULL,
    user_id         BIGINT NOT NULL,
    group_id        VARCHAR,
    score           INTEGER NOT NULL,
    comment         VARCHAR,
    asked_at        TIMESTAMP NOT NULL,
    answered_at     TIMESTAMP NOT NULL
);
