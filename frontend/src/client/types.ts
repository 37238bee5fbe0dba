/** Who a notification was addressed to (contract section 2). */
export interface Audience {
  kind: 'user' | 'group' | 'broadcast'
  id?: string
}

export type Priority = 'low' | 'normal' | 'high'

/** A notification as pushed over STOMP and listed by the REST API (contract section 2). */
export interface Notification {
  id: string
  event_id?: string
  type: string
  audience?: Audience
  title: string
  message: string
  link?: string | null
  data?: Record<string, unknown> | null
  priority?: Priority
  created_at: string
  read: boolean
  cursor?: string
}

/** One page of `GET /api/notifications`. */
export interface NotificationPage {
  items: Notification[]
  next_cursor: string | null
  unread_count: number
}

/**
 * Connection state shown to the user.
 * - `idle`: not started
 * - `connecting`: first connection attempt in progress
 * - `live`: connected and subscribed
 * - `reconnecting`: connection lost, retrying with backoff
 * - `offline`: browser offline, authentication failed, or retries have gone on for a while
 */
export type ConnectionState = 'idle' | 'connecting' | 'live' | 'reconnecting' | 'offline'

/** Supplies a JWT; asked again before the previous one expires and after an auth error. */
export type TokenProvider = () => string | null | undefined | Promise<string | null | undefined>

/** Where a notification entered this client from. */
export type NotificationSource = 'live' | 'page' | 'tab'

export interface NotifyState {
  /** Newest first, de-duplicated by id. */
  items: readonly Notification[]
  unreadCount: number
  connection: ConnectionState
  /** True while the first page is loading. */
  loading: boolean
  /** True while an older page ("load more") is loading. */
  loadingMore: boolean
  /** More (older) notifications can be loaded with `loadMore()`. */
  hasMore: boolean
  /** Last inbox load error (null when the last load succeeded). */
  error: NotifyError | null
  /** True once the first inbox page has been loaded successfully. */
  loaded: boolean
}

export interface NotifyError {
  kind: 'network' | 'unauthorized' | 'http' | 'protocol'
  status?: number
  message: string
  /** The contract's error code, when the server sent one. */
  code?: string
  /** The input field a 400 names. */
  field?: string
}

export interface NewNotificationEvent {
  notification: Notification
  source: NotificationSource
}
